import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool bench rewrite`: the time and the memory of a history
/// rewrite of a large log, measured on the rewrite running as a child process.
struct BenchRewriteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite the history of a file-datastore log of N keys (1000-key records) in a child process; report its time and peak memory.")

    @Option(name: .long, help: "Keys in the log (workload W: 13-byte keys, 100-byte values).")
    var keys = 5_000_000

    @Option(name: .long, help: "Folder for the log and the scratch state file (default: /var/tmp, a disk, so that the scratch file's pages are page cache, not memory the rewrite holds).")
    var directory = "/var/tmp"

    func run() async throws {
        try await BenchProgress.run("bench rewrite") { try await measure() }
    }

    private func measure() async throws {
        let folder = "\(directory)/whycache-bench-rewrite-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try FileDatastore(directory: folder + "/log", options: FileDatastoreOptions(syncPolicy: .never))
        try await store.createIfMissing()
        let records = try await BenchUpdateCommand.fill(store, order: Workload.permutation(UInt32(keys)), keysPerRecord: 1000)

        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        child.arguments = ["rewrite-history", "--store", "file://" + folder + "/log", "--through", "latest", "--scratch", folder]
        child.standardOutput = FileHandle.nullDevice
        let start = monotonicSeconds()
        try child.run()
        var peakResident = 0
        var peakAnonymous = 0
        while child.isRunning {
            let status = (try? String(contentsOfFile: "/proc/\(child.processIdentifier)/status", encoding: .utf8)) ?? ""
            peakResident = max(peakResident, Self.kilobytes("VmRSS:", in: status))
            peakAnonymous = max(peakAnonymous, Self.kilobytes("RssAnon:", in: status))
            usleep(20_000)
        }
        let elapsed = monotonicSeconds() - start
        guard child.terminationStatus == 0 else { throw ValidationError("the rewrite failed with status \(child.terminationStatus)") }
        let checkpoint = try await store.latestCheckpoint()
        let note = "\(records) records of 1000 keys → checkpoint of \(checkpoint?.recordCount ?? 0) records; scratch file in \(directory)"
        Measurement(metric: "rewrite_seconds", value: elapsed, unit: "s", keys: keys, note: note).emit()
        Measurement(metric: "rewrite_peak_rss_mb", value: Double(peakResident) / 1024, unit: "MiB", keys: keys,
                    note: "VmRSS sampled every 20 ms: includes the scratch file's mapped pages").emit()
        Measurement(metric: "rewrite_peak_anon_mb", value: Double(peakAnonymous) / 1024, unit: "MiB", keys: keys,
                    note: "RssAnon sampled every 20 ms: the memory the rewrite itself holds").emit()
    }

    /// The value in kB of the `/proc/<pid>/status` line `field`.
    private static func kilobytes(_ field: String, in status: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
}
