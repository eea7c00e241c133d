import Dispatch
import Testing
import WhyCache

/// Closing a ``StateSnapshot``: once, however many threads close it at the
/// same time, and no cursor reads after it.
@Suite struct StateSnapshotClosingTests {
    /// A cursor made before `close()` fails with `closed` afterwards instead
    /// of reading blocks that the released pin no longer protects.
    @Test func aCursorStopsOnceItsSnapshotIsClosed() throws {
        try withTemporaryDirectory { directory in
            let file = try SharedStateFile.open(at: directory + "/state")
            try file.write { transaction in
                for index in 0..<10 { try transaction.setValue(bytes("v\(index)"), forKey: bytes("k\(index)")) }
            }
            let snapshot = try file.snapshot()
            var cursor = snapshot.makeCursor()
            #expect(try cursor.next()?.key == bytes("k0"))
            snapshot.close()
            #expect(throws: StateFileError.closed(path: file.path)) { try cursor.next() }
            #expect(throws: StateFileError.closed(path: file.path)) { try cursor.next { _, _ in () } }
            #expect(throws: StateFileError.closed(path: file.path)) { try snapshot.value(forKey: bytes("k1")) }
        }
    }

    /// Many threads close the same snapshots at once, round after round,
    /// while the writer overwrites the key (so that released blocks are
    /// reused): a snapshot held open all along still reads its value, and
    /// the file verifies.
    @Test func concurrentClosesReleaseThePinOnce() throws {
        try withTemporaryDirectory { directory in
            let file = try SharedStateFile.open(at: directory + "/state")
            try file.write { try $0.setValue(bytes("v0"), forKey: bytes("k")) }
            let held = try file.snapshot()
            for round in 1...300 {
                let racing = try file.snapshot()
                DispatchQueue.concurrentPerform(iterations: 4) { _ in racing.close() }
                try file.write { try $0.setValue(bytes("v\(round)"), forKey: bytes("k")) }
            }
            #expect(try held.value(forKey: bytes("k")) == bytes("v0"))
            held.close()
            #expect(try file.value(forKey: bytes("k")) == bytes("v300"))
            #expect(try file.verify() == 1)
        }
    }
}
