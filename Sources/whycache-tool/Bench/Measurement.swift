import Foundation

/// One line of benchmark output.
struct Measurement: Encodable {
    var metric: String
    var value: Double
    var unit: String
    var keys: Int
    /// The ``KeyShape`` of a `bench state` run.
    var keyShape: String? = nil
    var transactionKeys: Int? = nil
    var cpuNanosecondsPerOperation: Double? = nil
    /// For a quantile of a distribution (0.5 for the median, 1.0 for the maximum).
    var quantile: Double? = nil
    var note: String? = nil

    enum CodingKeys: String, CodingKey {
        case metric, value, unit, keys, note, quantile
        case keyShape = "key_shape"
        case transactionKeys = "transaction_keys"
        case cpuNanosecondsPerOperation = "cpu_ns_per_op"
    }

    /// Writes the measurement as one JSON line on stdout, and counts it in
    /// the running benchmark's progress bar (if any).
    func emit() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self) else { return }
        let write = { FileHandle.standardOutput.write(data + Data("\n".utf8)) }
        if let progress = BenchProgress.current {
            progress.measured(write)
        } else {
            write()
        }
    }
}

/// The progress of a running benchmark, drawn on a terminal only: the
/// measurements done so far and the time since the start. Bound to the
/// benchmark's task (a task-local value, not a global), and read by
/// ``Measurement/emit()``.
final class BenchProgress: @unchecked Sendable {
    // @unchecked: a benchmark emits its measurements from one task at a time.

    /// The progress of the benchmark running in this task, if any.
    @TaskLocal static var current: BenchProgress?

    private let bar: ProgressBar
    private var done: UInt64 = 0

    private init(_ name: String) {
        bar = ProgressBar(label: name, unit: "measurements", showsRate: false)
        bar.begin(name)
    }

    /// Writes a measurement with `write`, around the bar, and counts it.
    func measured(_ write: () -> Void) {
        done += 1
        bar.interrupt(done: done, write)
    }

    /// Runs the benchmark `body` with a progress bar named `name`.
    static func run<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let progress = BenchProgress(name)
        defer { progress.bar.finish(done: progress.done) }
        return try $current.withValue(progress, operation: body)
    }

    /// Runs the asynchronous benchmark `body` with a progress bar named `name`.
    static func run<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        let progress = BenchProgress(name)
        defer { progress.bar.finish(done: progress.done) }
        return try await $current.withValue(progress, operation: body)
    }
}
