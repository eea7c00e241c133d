import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import WhyCache

/// `whycache-tool follow [--interval SECONDS] --store URL --state PATH`
///
/// Keeps a host's state file current for processes that never call
/// `update()` themselves. Each round applies what the log holds; a round
/// that fails waits twice as long as the one before (up to
/// `--maximum-backoff`), and the first success goes back to `--interval`.
/// SIGTERM or SIGINT ends it after the update in progress, with status 0.
struct FollowCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Keep the state file current: update every --interval seconds, back off on errors, log lag on stderr, stop on SIGTERM.")

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "Seconds between updates.")
    var interval: Double = 1

    @Option(name: .long, help: "The longest wait, in seconds, after repeated errors.")
    var maximumBackoff: Double = 60

    func validate() throws {
        guard interval > 0, interval.isFinite else { throw ValidationError("--interval must be a positive number of seconds") }
        guard maximumBackoff >= interval else { throw ValidationError("--maximum-backoff must be at least --interval") }
    }

    func execute() async throws {
        let stop = TerminationSignals()
        let statePath = try storeOptions.requireState()
        try await storeOptions.withDatastore { datastore in
            let cache = try SharedCache(statePath: statePath, datastore: datastore)
            defer { cache.close() }
            Self.log("following \(try storeOptions.requireStore().description) into \(statePath) every \(interval) s")
            var failures = 0
            while !stop.received {
                do {
                    let summary = try await cache.update()
                    let latest = try await datastore.latestUpdateID()
                    if failures > 0 || summary.recordsApplied > 0 {
                        Self.log("at update \(summary.updateID): applied \(summary.recordsApplied) records; lag \(latest > summary.updateID ? latest - summary.updateID : 0)")
                    }
                    failures = 0
                } catch {
                    failures += 1
                    Self.log("update failed (\(failures) in a row): \(error)")
                }
                let wait = failures == 0 ? interval : min(maximumBackoff, interval * pow(2, Double(min(failures, 30))))
                if failures > 0 { Self.log(String(format: "retrying in %.1f s", wait)) }
                await stop.sleep(seconds: wait)
            }
            Self.log("stopping on \(stop.name)")
        }
    }

    /// A timestamped line on stderr.
    static func log(_ message: String) {
        let time = ISO8601DateFormatter().string(from: Date())
        FileHandle.standardError.write(Data("\(time) whycache-tool follow: \(message)\n".utf8))
    }
}

/// Catches SIGTERM and SIGINT (instead of dying of them) and remembers that
/// one arrived, so that a loop can finish its round and stop.
final class TerminationSignals: @unchecked Sendable {
    // @unchecked: `sources` is written only by init; the flag is atomic.

    /// The number of the signal that arrived, 0 before one does.
    private final class Flag: Sendable {
        let number = Atomic<Int32>(0)
    }

    private let flag = Flag()
    private var sources: [any DispatchSourceSignal] = []

    init() {
        let flag = self.flag
        for number in [SIGTERM, SIGINT] {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.number.store(number, ordering: .sequentiallyConsistent) }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        sources.forEach { $0.cancel() }
    }

    /// Whether a signal arrived.
    var received: Bool { flag.number.load(ordering: .sequentiallyConsistent) != 0 }

    /// The signal that arrived, for messages.
    var name: String {
        switch flag.number.load(ordering: .sequentiallyConsistent) {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        default: "request"
        }
    }

    /// Waits `seconds`, or less when a signal arrives (checked every 50 ms).
    func sleep(seconds: Double) async {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !received && ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
        }
    }
}
