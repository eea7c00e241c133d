import Glibc
import Synchronization

/// The maintenance lock of a ``FileDatastore``: an exclusive `flock` on
/// `maintenance.lock`, held through a descriptor of its own.
///
/// Because `flock` locks belong to an open file description, a second
/// acquisition fails even inside the same process, and the kernel releases
/// the lock when the holding process dies.
final class FileMaintenanceLock: DatastoreMaintenanceLock {
    /// The locked descriptor; `nil` once released.
    private let file: Mutex<FileDescriptor?>

    private init(file: FileDescriptor) {
        self.file = Mutex(file)
    }

    /// Takes the lock of `layout` without waiting. Blocks on file I/O.
    ///
    /// - Throws: ``DatastoreError/maintenanceLockHeld`` when it is taken.
    static func acquire(_ layout: FileDatastoreLayout) throws(DatastoreError) -> FileMaintenanceLock {
        let file = try FileDescriptor.open(layout.maintenanceLockPath, flags: O_RDWR | O_CREAT)
        let locked: Bool
        do {
            locked = try file.lockExclusively(wait: false)
        } catch {
            file.close()
            throw error
        }
        guard locked else {
            file.close()
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

    /// Closing the descriptor releases the lock.
    private func close() {
        file.withLock { descriptor in
            descriptor?.close()
            descriptor = nil
        }
    }
}
