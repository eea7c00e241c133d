import Foundation
import Testing
import WhyCache

/// What a restore replaces and what it refuses, what the writer refuses, and
/// the temporary files of both.
@Suite struct SnapshotRestoreTests {
    /// A snapshot of two keys at update 50.
    private func snapshotAt50(in directory: String) throws -> [UInt8] {
        let path = directory + "/source"
        let file = try makeInitializedState(at: path, entries: [(bytes("a"), bytes("1")), (bytes("b"), bytes("2"))], updateID: 50)
        defer { try? SharedStateFile.remove(at: path) }
        return try snapshotBytes(of: file).bytes
    }

    @Test func aNewerStateIsRefusedUnlessReplacingIsAllowed() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let statePath = directory + "/state"
            try makeInitializedState(at: statePath, entries: [(bytes("newer"), bytes("x"))], updateID: 100)
            // (Read once and released, so that the restore's read reuses the
            // same reader slot and leaves the reader table as it was.)
            let before = try Data(contentsOf: URL(fileURLWithPath: statePath))
            let error = snapshotError { try SnapshotRestorer().restore(from: memorySource(snapshot), at: statePath) }
            #expect(error == .stateIsNewer(stateUpdateID: 100, snapshotUpdateID: 50))
            #expect(try Data(contentsOf: URL(fileURLWithPath: statePath)) == before)
            #expect(try directoryNames(directory) == ["state"])
            #expect(try !SharedStateFile.open(at: statePath).isRetired)

            try SnapshotRestorer(replacingNewerState: true).restore(from: memorySource(snapshot), at: statePath)
            #expect(try SharedStateFile.open(at: statePath).updateID() == 50)
            #expect(try stateEntries(at: statePath).map(\.key) == [bytes("a"), bytes("b")])
            #expect(try directoryNames(directory) == ["state"])
        }
    }

    /// A state that moves past the snapshot while the snapshot is being read
    /// is caught by the check under its writer lock, just before the install.
    @Test func aStateThatBecomesNewerDuringTheRestoreIsKept() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let statePath = directory + "/state"
            let current = try makeInitializedState(at: statePath, entries: [], updateID: 10)
            // In the trailer, after the first check, another writer commits update 100.
            let source = memorySource(snapshot, runningAt: snapshot.count - 5) { () throws(SnapshotError) in
                do {
                    try current.write { transaction in try transaction.setUpdateID(100) }
                } catch {
                    throw .io(operation: "commit in the test", errno: EIO)
                }
            }
            #expect(snapshotError { try SnapshotRestorer().restore(from: source, at: statePath) }
                == .stateIsNewer(stateUpdateID: 100, snapshotUpdateID: 50))
            #expect(try directoryNames(directory) == ["state"])
            #expect(!current.isRetired)
            #expect(try current.updateID() == 100)
        }
    }

    /// The same update id, a state never built from a log, a missing file
    /// and a damaged file are all simply replaced.
    @Test func olderEqualUninitializedMissingAndDamagedStatesAreReplaced() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let statePath = directory + "/state"
            func restoreAndCheck(_ what: Comment) throws {
                try SnapshotRestorer().restore(from: memorySource(snapshot), at: statePath)
                #expect(try SharedStateFile.open(at: statePath).updateID() == 50, what)
                #expect(try stateEntries(at: statePath).map(\.key) == [bytes("a"), bytes("b")], what)
                #expect(try directoryNames(directory) == ["state"], what)
            }
            try restoreAndCheck("missing")
            try makeInitializedState(at: statePath, entries: [(bytes("c"), [])], updateID: 50)
            try restoreAndCheck("same update id")
            try SharedStateFile.remove(at: statePath)
            try SharedStateFile.open(at: statePath).write { transaction in
                try transaction.setValue(bytes("v"), forKey: bytes("not from a log"))
                try transaction.setUpdateID(1000)
            }
            try restoreAndCheck("uninitialized")
            // Damage the header's checksummed part.
            let descriptor = open(statePath, O_WRONLY)
            #expect(pwrite(descriptor, [0x55], 1, 20) == 1)
            close(descriptor)
            #expect(throws: StateFileError.self) { try SharedStateFile.open(at: statePath) }
            try restoreAndCheck("damaged")
        }
    }

    /// A file that is not a state file is never replaced.
    @Test func aFileThatIsNotAStateFileIsKept() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let path = directory + "/precious"
            let contents = Data(repeating: 0x42, count: 10_000)
            try contents.write(to: URL(fileURLWithPath: path))
            let error = snapshotError { try SnapshotRestorer().restore(from: memorySource(snapshot), at: path) }
            #expect(error == .stateFile(.notAStateFile(path: path)))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == contents)
            #expect(try directoryNames(directory) == ["precious"])
        }
    }

    /// Processes that have the displaced file open keep reading its state and
    /// learn that it was retired; the path holds the restored state.
    @Test func theDisplacedFileIsRetiredAndStillReadable() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let statePath = directory + "/state"
            let old = try makeInitializedState(at: statePath, entries: [(bytes("old"), bytes("kept"))], updateID: 20)
            let pinned = try old.snapshot()
            defer { pinned.close() }
            try SnapshotRestorer().restore(from: memorySource(snapshot), at: statePath)
            #expect(old.isRetired)
            #expect(try old.value(forKey: bytes("old")) == bytes("kept"))
            #expect(try pinned.value(forKey: bytes("old")) == bytes("kept"))
            #expect(try old.updateID() == 20)
            let reopened = try SharedStateFile.open(at: statePath)
            #expect(!reopened.isRetired)
            #expect(try reopened.value(forKey: bytes("a")) == bytes("1"))
            #expect(try reopened.value(forKey: bytes("old")) == nil)
        }
    }

    /// Temporary files of restores whose process is gone are deleted; those
    /// of live processes are not.
    @Test func abandonedTemporaryFilesOfDeadProcessesAreDeleted() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let finished = Process()
            finished.executableURL = URL(fileURLWithPath: "/bin/true")
            try finished.run()
            finished.waitUntilExit()
            let dead = "state.restoring.\(finished.processIdentifier).123"
            let live = "state.restoring.\(getpid()).456"
            for name in [dead, dead + ".creating.1.2", live, "state.rebuilding.\(finished.processIdentifier).7"] {
                try Data([1]).write(to: URL(fileURLWithPath: directory + "/" + name))
            }
            try SnapshotRestorer().restore(from: memorySource(snapshot), at: directory + "/state")
            #expect(try directoryNames(directory) == ["state", "state.rebuilding.\(finished.processIdentifier).7", live].sorted())
        }
    }

    /// Errors of the caller's source and sink come back as they were thrown;
    /// a source that claims more bytes than its buffer is refused.
    @Test func sourceAndSinkFailuresArePassedOn() throws {
        try withTemporaryDirectory { directory in
            let snapshot = try snapshotAt50(in: directory)
            let statePath = directory + "/state"
            try makeInitializedState(at: statePath, entries: [], updateID: 1)
            let before = try Data(contentsOf: URL(fileURLWithPath: statePath))
            var served = 0
            let failing: SnapshotSource = { (buffer) throws(SnapshotError) in
                guard served < snapshot.count - 10 else { throw .io(operation: "read", errno: EIO) }
                served += 1
                buffer[0] = snapshot[served - 1]
                return 1
            }
            #expect(snapshotError { try SnapshotRestorer().restore(from: failing, at: statePath) } == .io(operation: "read", errno: EIO))
            let lying: SnapshotSource = { buffer in buffer.count + 1 }
            #expect(snapshotError { try SnapshotRestorer().restore(from: lying, at: statePath) } == .invalidArgument(
                reason: "the source reported 3 bytes read into a buffer of 2"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: statePath)) == before)
            #expect(try directoryNames(directory) == ["state"])

            let file = try SharedStateFile.open(at: statePath)
            let view = try file.snapshot()
            defer { view.close() }
            for compression in [SnapshotCompression.none, .gzip(level: 1)] {
                let error = snapshotError {
                    try SnapshotWriter(compression: compression).write(view, to: { (_) throws(SnapshotError) in throw .io(operation: "write", errno: EPIPE) })
                }
                #expect(error == .io(operation: "write", errno: EPIPE))
            }
        }
    }

    /// The writer refuses a state never built from a log, a closed view and
    /// arguments it cannot use.
    @Test func theWriterRefusesWhatItCannotWrite() throws {
        try withTemporaryDirectory { directory in
            let fresh = try SharedStateFile.open(at: directory + "/fresh")
            let view = try fresh.snapshot()
            #expect(!view.isInitialized)
            #expect(snapshotError { try SnapshotWriter().write(view, to: { _ in }) } == .uninitializedState)

            let file = try makeInitializedState(at: directory + "/state", entries: [(bytes("k"), [])], updateID: 3)
            let pinned = try file.snapshot()
            let longPrefix = [UInt8](repeating: 1, count: WhyCacheLimits.maximumKeyLength + 1)
            #expect(snapshotError { try SnapshotWriter(prefixes: [longPrefix]).write(pinned, to: { _ in }) } == .invalidArgument(
                reason: "a key prefix of 1025 bytes is longer than the longest key (1024 bytes)"))
            #expect(snapshotError { try SnapshotWriter(compression: .gzip(level: 10)).write(pinned, to: { _ in }) } == .invalidArgument(
                reason: "gzip level 10 is outside 0...9"))
            pinned.close()
            #expect(snapshotError { try SnapshotWriter().write(pinned, to: { _ in }) } == .stateFile(.closed(path: directory + "/state")))
        }
    }
}
