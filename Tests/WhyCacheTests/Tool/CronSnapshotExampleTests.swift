import Foundation
import Testing
import WhyCache

/// `Examples/CronSnapshot`: its two scripts run as cron and a booting host
/// would run them, on a file datastore, with a folder as the blob store.
@Suite struct CronSnapshotExampleTests {
    /// The example's folder in this checkout.
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Examples/CronSnapshot")

    /// Runs the example's script `name` with `environment` and the built tool.
    private func run(_ name: String, _ environment: [String: String]) throws -> (status: Int32, lines: [String], errors: String) {
        try HelperProcess(
            [Self.folder.appendingPathComponent(name).path], executable: URL(fileURLWithPath: "/bin/bash"),
            environment: environment.merging(["WHYCACHE_TOOL": ToolRunner.executable.path]) { own, _ in own }
        ).finish()
    }

    /// The contents of the state file at `path`.
    private func contents(of path: String) throws -> [[UInt8]: [UInt8]] {
        let view = try SharedStateFile.open(at: path).snapshot()
        defer { view.close() }
        return Dictionary(uniqueKeysWithValues: try view.entries().map { ($0.key, $0.value) })
    }

    /// Appends 20 single-key records of round `round` and a record that
    /// deletes a key of the round before.
    private func write(round: Int, to store: any Datastore) async throws {
        for index in 0..<20 {
            _ = try await store.append(try LogRecord([.set(key: bytes("r\(round)/\(index)"), value: bytes("v\(round)"))]).encoded())
        }
        _ = try await store.append(try LogRecord([.delete(key: bytes("r\(round - 1)/0"))]).encoded())
    }

    @Test func snapshotsPublishedFromCronBootNewHostsWhateverTheBlobStoreHolds() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let log = "file://\(directory)/log"
            let blobs = directory + "/blobs"
            let publisherState = directory + "/publisher"
            let publisher = ["WHYCACHE_STATE": publisherState, "WHYCACHE_BLOBS": blobs, "WHYCACHE_SNAPSHOTS_KEPT": "2"]

            // Three hours of cron: the publisher keeps up with the log, then snapshots.
            var publishedIDs: [UInt64] = []
            for round in 1...3 {
                try await write(round: round, to: store)
                #expect(try await ToolRunner.run(["update", "--store", log, "--state", publisherState]).status == 0)
                let cron = try run("snapshot-to-blobs.sh", publisher)
                #expect(cron.status == 0, "\(cron.errors)")
                let id = try await store.latestUpdateID()
                #expect(cron.lines == ["snapshot at update \(id) published as \(String(format: "snapshot-%020llu.gz", id)) and latest.snapshot.gz"])
                publishedIDs.append(id)
            }
            // The newest two numbered snapshots are kept, and nothing half-uploaded.
            let names = try FileManager.default.contentsOfDirectory(atPath: blobs).sorted()
            #expect(names == ["latest.snapshot.gz"] + publishedIDs.suffix(2).map { String(format: "snapshot-%020llu.gz", $0) })
            // The log goes on after the last snapshot.
            try await write(round: 4, to: store)

            func boot(_ state: String) throws -> (status: Int32, errors: String) {
                let result = try run("boot-from-blobs.sh", ["WHYCACHE_STORE": log, "WHYCACHE_STATE": state, "WHYCACHE_BLOBS": blobs])
                return (result.status, result.errors)
            }
            func expectCurrent(_ state: String, _ boot: (status: Int32, errors: String), saying words: String) async throws {
                #expect(boot.status == 0, "\(boot.errors)")
                #expect(boot.errors.contains(words), "\(boot.errors)")
                #expect(try contents(of: state) == (try await CacheFixture.replay(store)))
            }

            // A new host: the newest snapshot, then the log after it.
            let fresh = directory + "/fresh"
            try await expectCurrent(fresh, try boot(fresh), saying: "restored update \(publishedIDs[2]):")
            // The service restarts on that host: it only catches up.
            try await write(round: 5, to: store)
            try await expectCurrent(fresh, try boot(fresh), saying: "a state file is there")
            // A state file that cannot be used is moved aside, and the host boots from the snapshot.
            let damaged = directory + "/damaged"
            try Data("not a state file".utf8).write(to: URL(fileURLWithPath: damaged))
            try await expectCurrent(damaged, try boot(damaged), saying: "moved to \(damaged).unusable")
            #expect(FileManager.default.fileExists(atPath: damaged + ".unusable"))
            // A truncated snapshot is refused whole; the host builds from the log.
            let latest = URL(fileURLWithPath: blobs + "/latest.snapshot.gz")
            let snapshot = try Data(contentsOf: latest)
            try snapshot.prefix(snapshot.count / 2).write(to: latest)
            let afterBadSnapshot = directory + "/after-bad-snapshot"
            try await expectCurrent(afterBadSnapshot, try boot(afterBadSnapshot), saying: "the newest snapshot cannot be used")
            // No snapshot at all: the same.
            try FileManager.default.removeItem(atPath: blobs)
            let withoutSnapshot = directory + "/without-snapshot"
            try await expectCurrent(withoutSnapshot, try boot(withoutSnapshot), saying: "no snapshot in \(blobs)")
        }
    }

    /// A snapshot that cannot be taken (no state file) publishes nothing and
    /// fails, leaving the last good snapshot in place.
    @Test func aFailedSnapshotPublishesNothing() throws {
        try withTemporaryDirectory { directory in
            let blobs = directory + "/blobs"
            try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
            try Data("the last good snapshot".utf8).write(to: URL(fileURLWithPath: blobs + "/latest.snapshot.gz"))
            let cron = try run("snapshot-to-blobs.sh", ["WHYCACHE_STATE": directory + "/missing", "WHYCACHE_BLOBS": blobs])
            #expect(cron.status != 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: blobs) == ["latest.snapshot.gz"])
            #expect(try String(contentsOfFile: blobs + "/latest.snapshot.gz", encoding: .utf8) == "the last good snapshot")
        }
    }
}
