import Glibc

/// The maintenance lock of a ``FileDatastore``: an exclusive `flock` on
/// `maintenance.lock`, held through a descriptor of its own.
///
/// Because `flock` locks belong to an open file description, a second
/// acquisition fails even inside the same process, and the kernel releases
/// the lock when the holding process dies.
final class FileMaintenanceLock: DatastoreMaintenanceLock {
    /// The locked descriptor; `nil` once released.
    private let file: Locked<DatastoreFile?>

    private init(file: DatastoreFile) {
        self.file = Locked(file)
    }

    /// Takes the lock of `layout` without waiting. Blocks on file I/O.
    ///
    /// - Throws: ``DatastoreError/maintenanceLockHeld`` when it is taken.
    static func acquire(_ layout: FileDatastoreLayout) throws(DatastoreError) -> FileMaintenanceLock {
        guard let file = try DatastoreFile.open(layout.maintenanceLockPath, flags: O_RDWR | O_CREAT).lockedOrClosed(wait: false) else {
            throw .maintenanceLockHeld
        }
        return FileMaintenanceLock(file: file)
    }

    func release() async {
        close()
    }

    deinit {
        close()
    }

    /// Unlocks, then closes the descriptor. Closing alone would not always
    /// release the lock at once: a child process this process is spawning
    /// shares the open file description from its fork until its exec (the
    /// descriptor is close-on-exec), and the lock lasts while any descriptor
    /// of the description is open. `LOCK_UN` releases it for all of them.
    private func close() {
        file.withLock { descriptor in
            descriptor?.unlock()
            descriptor?.close()
            descriptor = nil
        }
    }
}
