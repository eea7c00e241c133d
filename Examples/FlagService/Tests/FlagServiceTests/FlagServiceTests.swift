import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Two FlagService processes on one shared-state file, as two workers of
/// one machine: a flag written through one is read over HTTP from the other,
/// and `/metrics` shows the update id and the lag.
@Suite struct FlagServiceTests {
    @Test func aFlagWrittenThroughOneWorkerIsServedByTheOther() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flag-service-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = ["FLAGS_LOG": directory + "/log", "FLAGS_STATE": directory + "/flags.whycache", "PORT": "0"]
        let first = try RunningService(environment: environment)
        defer { first.stop() }
        let second = try RunningService(environment: environment)
        defer { second.stop() }

        #expect(try await first.request("GET", "/flags/dark-mode").status == 404)
        let written = try await second.request("PUT", "/admin/flags/dark-mode", body: "on")
        #expect(written.status == 200)
        let id = try #require(UInt64(written.text.trimmingCharacters(in: .whitespacesAndNewlines)), "\(written.text)")
        // Read-your-writes across processes: the other worker waits until its machine applied `id`.
        let read = try await first.request("GET", "/flags/dark-mode?after=\(id)")
        #expect(read.status == 200)
        #expect(read.text == "on\n")

        // The metrics: this machine's update id, and the lag behind the log. The
        // updater's rounds record them (every 250 ms), so the read above may
        // have come first; give them up to half a minute.
        var metrics = ""
        func gauge(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + "{") }.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
        }
        for _ in 0..<300 {
            metrics = try await first.request("GET", "/metrics").text
            if let local = gauge("whycache_local_update_id"), local >= Double(id) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(gauge("whycache_local_update_id").map { $0 >= Double(id) } == true, "\(metrics)")
        #expect(gauge("whycache_lag_update_ids") != nil, "\(metrics)")
        #expect(gauge("whycache_poller") != nil, "\(metrics)")

        // A delete through the first worker, seen by the second.
        let deleted = try await first.request("DELETE", "/admin/flags/dark-mode")
        #expect(deleted.status == 200)
        let deletedID = try #require(UInt64(deleted.text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(deletedID > id)
        #expect(try await second.request("GET", "/flags/dark-mode?after=\(deletedID)").status == 404)
        // A name too long for a key is the client's error, and nothing is written.
        #expect(try await second.request("PUT", "/admin/flags/" + String(repeating: "x", count: 2_000), body: "on").status == 400)

        // SIGTERM: both stop cleanly.
        #expect(first.stop() == 0)
        #expect(second.stop() == 0)
    }
}

/// A FlagService process started from this build, on a port it picked.
final class RunningService: @unchecked Sendable {
    let process = Process()
    let port: Int
    private let output = Pipe()

    init(environment: [String: String]) throws {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("FlagService").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        process.executableURL = directory.appendingPathComponent("FlagService")
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = output
        try process.run()
        // Its first line: "listening on port N".
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { throw ServiceDidNotStart(output: String(decoding: line, as: UTF8.self)) }
            if byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on port "), let port = Int(text.dropFirst("listening on port ".count)) else {
            throw ServiceDidNotStart(output: text)
        }
        self.port = port
    }

    /// Sends one HTTP request and returns the status and the body as text.
    func request(_ method: String, _ path: String, body: String? = nil) async throws -> (status: Int, text: String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body.map { Data($0.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// Sends SIGTERM (once) and returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    struct ServiceDidNotStart: Error {
        let output: String
    }
}
