import Foundation
import Testing
import WhyCache

/// Snapshots of state files that subscribe to key prefixes: the stream
/// names the prefixes, a restore carries them into the new file, and a
/// restore that would change which keys a file keeps is refused.
@Suite struct SnapshotSubscriptionTests {
    /// Options that subscribe to `prefixes`.
    private func subscribing(_ prefixes: [[UInt8]]) -> SharedStateFile.Options {
        var options = SharedStateFile.Options()
        options.subscribedPrefixes = prefixes
        return options
    }

    /// A state at update 40 that subscribes to `b` and `user/`, with keys
    /// under both; returns its snapshot written by `writer`.
    private func subscribedSnapshot(
        in directory: String, writer: SnapshotWriter = SnapshotWriter()
    ) throws -> (bytes: [UInt8], summary: SnapshotSummary) {
        let path = directory + "/source"
        let file = try SharedStateFile.open(at: path, options: subscribing([bytes("user/"), bytes("b")]))
        defer { try? SharedStateFile.remove(at: path) }
        try file.write { transaction in
            for key in ["b", "b1", "ba", "user/1", "user/2", "user/10"] { try transaction.setValue(bytes("v-" + key), forKey: bytes(key)) }
            try transaction.setUpdateID(40)
            try transaction.markInitialized()
        }
        return try snapshotBytes(of: file, writer: writer)
    }

    /// An initialized state file at `path` that subscribes to `prefixes`,
    /// read once and closed (so that a later read reuses its reader slot and
    /// leaves the file as it was); returns its bytes.
    private func existingState(at path: String, prefixes: [[UInt8]]) throws -> Data {
        do {
            let file = try SharedStateFile.open(at: path, options: subscribing(prefixes))
            try file.write { transaction in
                if let prefix = prefixes.first { try transaction.setValue(bytes("old"), forKey: prefix + bytes("old")) }
                try transaction.setUpdateID(10)
                try transaction.markInitialized()
            }
        }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test func aSnapshotOfASubscribedStateNamesItsPrefixesAndRestoresThem() throws {
        try withTemporaryDirectory { directory in
            let (stream, summary) = try subscribedSnapshot(in: directory)
            #expect(summary.header.prefixes == [bytes("b"), bytes("user/")])
            #expect(summary.header.keyCount == 6)

            let restored = directory + "/restored"
            try SnapshotRestorer().restore(from: memorySource(stream), at: restored)
            let file = try SharedStateFile.open(at: restored)
            #expect(file.subscribedPrefixes == [bytes("b"), bytes("user/")])
            #expect(try file.updateID() == 40)
            #expect(try stateEntries(at: restored).map(\.key) == ["b", "b1", "ba", "user/1", "user/10", "user/2"].map(bytes))
            #expect(try directoryNames(directory) == ["restored"])

            // Asked for by the options, in any spelling, it restores too.
            try SnapshotRestorer(options: subscribing([bytes("user/"), bytes("b"), bytes("user/x")]))
                .restore(from: memorySource(stream), at: directory + "/asked")
            #expect(try SharedStateFile.open(at: directory + "/asked").subscribedPrefixes == [bytes("b"), bytes("user/")])
        }
    }

    @Test func theWritersPrefixesNarrowTheStatesPrefixes() throws {
        try withTemporaryDirectory { directory in
            let narrowed = try subscribedSnapshot(in: directory, writer: SnapshotWriter(prefixes: [bytes("user/1"), bytes("a"), bytes("ba")]))
            #expect(narrowed.summary.header.prefixes == [bytes("ba"), bytes("user/1")])
            #expect(narrowed.summary.header.keyCount == 3)
            let wider = try subscribedSnapshot(in: directory, writer: SnapshotWriter(prefixes: [bytes("u"), bytes("b")]))
            #expect(wider.summary.header.prefixes == [bytes("b"), bytes("user/")])
            #expect(snapshotError { _ = try subscribedSnapshot(in: directory, writer: SnapshotWriter(prefixes: [bytes("a"), bytes("c")])) }
                == .invalidArgument(reason: "none of the prefixes lies within those the state subscribes to (the keys under \"b\", \"user/\")"))
        }
    }

    @Test func aRestoreThatWouldChangeTheSubscriptionIsRefused() throws {
        try withTemporaryDirectory { directory in
            let subscribed = try subscribedSnapshot(in: directory).bytes
            let statePath = directory + "/state"
            let mismatch = SnapshotError.subscriptionMismatch(snapshotPrefixes: [bytes("b"), bytes("user/")], statePrefixes: [bytes("b")])

            // Onto a file with other prefixes, or with none; the file is untouched.
            for prefixes in [[bytes("b")], []] {
                try? SharedStateFile.remove(at: statePath)
                let before = try existingState(at: statePath, prefixes: prefixes)
                let error = snapshotError { try SnapshotRestorer(replacingNewerState: true).restore(from: memorySource(subscribed), at: statePath) }
                #expect(error == .subscriptionMismatch(snapshotPrefixes: [bytes("b"), bytes("user/")], statePrefixes: prefixes))
                #expect(try Data(contentsOf: URL(fileURLWithPath: statePath)) == before)
                #expect(try directoryNames(directory) == ["state"])
            }
            // Options that ask for other prefixes, even with no file at the path.
            let missing = directory + "/missing"
            #expect(snapshotError { try SnapshotRestorer(options: subscribing([bytes("b")])).restore(from: memorySource(subscribed), at: missing) }
                == mismatch)
            #expect(!FileManager.default.fileExists(atPath: missing))

            // A snapshot of every key onto a subscribed file.
            let everything = try makeInitializedState(at: directory + "/full", entries: [(bytes("b1"), [])], updateID: 50)
            let full = try snapshotBytes(of: everything).bytes
            try SharedStateFile.remove(at: directory + "/full")
            try SharedStateFile.remove(at: statePath)
            _ = try existingState(at: statePath, prefixes: [bytes("b")])
            #expect(snapshotError { try SnapshotRestorer().restore(from: memorySource(full), at: statePath) }
                == .subscriptionMismatch(snapshotPrefixes: [], statePrefixes: [bytes("b")]))

            // The same prefixes: replaced as usual.
            try SharedStateFile.remove(at: statePath)
            _ = try existingState(at: statePath, prefixes: [bytes("user/"), bytes("b")])
            try SnapshotRestorer().restore(from: memorySource(subscribed), at: statePath)
            #expect(try SharedStateFile.open(at: statePath).updateID() == 40)
        }
    }

    /// A file with other prefixes that takes the path while the snapshot is
    /// read is caught by the check under its writer lock, before the install.
    @Test func aFileWithOtherPrefixesThatAppearsDuringTheRestoreIsKept() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try subscribedSnapshot(in: directory).bytes
            let statePath = directory + "/state"
            var replaced: SharedStateFile?
            let options = subscribing([bytes("b")])
            let source = memorySource(snapshot, runningAt: snapshot.count - 5) { () throws(SnapshotError) in
                do {
                    replaced = try SharedStateFile.open(at: statePath, options: options)
                } catch {
                    throw .io(operation: "create in the test", errno: EIO)
                }
            }
            #expect(snapshotError { try SnapshotRestorer().restore(from: source, at: statePath) }
                == .subscriptionMismatch(snapshotPrefixes: [bytes("b"), bytes("user/")], statePrefixes: [bytes("b")]))
            #expect(replaced.map { !$0.isRetired } == true)
            #expect(try SharedStateFile.open(at: statePath).subscribedPrefixes == [bytes("b")])
            #expect(try directoryNames(directory) == ["state"])
        }
    }
}
