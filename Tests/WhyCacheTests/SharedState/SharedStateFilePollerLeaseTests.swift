import Foundation
import Testing
@testable import WhyCache
@testable import WhyCacheState

/// The poller lease of a state file (docs/FORMAT.md section 1.10): one open
/// file at a time holds it, closing the file releases it, it is the byte the
/// format names, and a file installed at the path has a lease of its own.
@Suite struct SharedStateFilePollerLeaseTests {
    /// Two ``SharedStateFile`` objects on one path are two open file
    /// descriptions, as two processes would have: one holds the lease at a
    /// time, taking it again is idempotent, and releasing it or closing the
    /// holder's file lets the other take it.
    @Test func twoOpenFilesOfOnePathHoldTheLeaseOneAtATime() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            var first: SharedStateFile? = try SharedStateFile.open(at: path)
            let second = try SharedStateFile.open(at: path)
            #expect(first?.holdsPollerLease == false)
            #expect(try first?.tryTakePollerLease() == true)
            #expect(try first?.tryTakePollerLease() == true, "the holder takes it again")
            #expect(first?.holdsPollerLease == true)
            #expect(try !second.tryTakePollerLease())
            #expect(!second.holdsPollerLease)

            first?.releasePollerLease()
            #expect(first?.holdsPollerLease == false)
            #expect(try second.tryTakePollerLease())
            #expect(try first?.tryTakePollerLease() == false)
            second.releasePollerLease()
            #expect(try first?.tryTakePollerLease() == true)
            #expect(try !second.tryTakePollerLease())

            first = nil  // the last reference: the file's descriptor is closed
            #expect(try second.tryTakePollerLease(), "closing the holder's file released the lease")
        }
    }

    /// The lease is an open-file-description write lock on byte 2^59 of the
    /// file, as FORMAT.md says, and no reader-slot lock is on that byte.
    @Test func theLeaseIsALockOnTheDocumentedByte() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let file = try SharedStateFile.open(at: path)
            _ = try file.updateID()  // holds a reader slot, whose lock is on 2^60 + slot
            let probe = open(path, O_RDWR | O_CLOEXEC)
            try #require(probe >= 0)
            defer { close(probe) }
            func lockOnLeaseByte() -> Int16 {
                var lock = flock()
                lock.l_type = Int16(F_WRLCK)
                lock.l_whence = Int16(SEEK_SET)
                lock.l_start = off_t(1) << 59
                lock.l_len = 1
                let ofdGetLock: Int32 = 36  // F_OFD_GETLK (Linux)
                guard fcntl(probe, ofdGetLock, &lock) == 0 else { return -1 }
                return lock.l_type
            }
            #expect(FileLayout.pollerLeaseOffset == 1 << 59)
            #expect(lockOnLeaseByte() == Int16(F_UNLCK), "nothing locks the byte before the lease is taken")
            #expect(try file.tryTakePollerLease())
            #expect(lockOnLeaseByte() == Int16(F_WRLCK))
            file.releasePollerLease()
            #expect(lockOnLeaseByte() == Int16(F_UNLCK))
        }
    }

    /// The lease belongs to the file, not to the path: a file installed at
    /// the path (a rebuild or a restore), or created there after a removal,
    /// can be leased while the holder of the old file's lease still lives.
    @Test func aFileReplacedAtThePathHasALeaseOfItsOwn() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            let old = try SharedStateFile.open(at: path)
            #expect(try old.tryTakePollerLease())

            let replacement = directory + "/replacement"
            _ = try SharedStateFile.open(at: replacement)
            try SharedStateFile.install(replacement, at: path)
            let installed = try SharedStateFile.open(at: path)
            let installedToo = try SharedStateFile.open(at: path)
            #expect(old.isRetired && !installed.isRetired)
            #expect(try installed.tryTakePollerLease(), "the installed file's lease is free")
            #expect(try !installedToo.tryTakePollerLease(), "and one open file holds it")
            #expect(old.holdsPollerLease, "the old file's holder keeps the old file's lease")

            try SharedStateFile.remove(at: path)
            let recreated = try SharedStateFile.open(at: path)
            #expect(try recreated.tryTakePollerLease(), "a file created after a removal has a free lease too")
            #expect(installed.holdsPollerLease && old.holdsPollerLease)
        }
    }
}
