import Glibc

/// An open file of the file datastore, with the few system calls it needs,
/// each retried on `EINTR` and reporting failures as ``DatastoreError/ioFailure(operation:path:errno:)``.
///
/// This is one of the two places of the datastore that use raw pointers (the
/// other is ``FileSystem``). Whoever opens a descriptor closes it exactly once.
struct FileDescriptor: Sendable {
    /// The kernel's descriptor number.
    let raw: Int32

    /// The path the file was opened at, for error messages.
    let path: String

    /// Opens `path`. `flags` are `open(2)` flags; `O_CLOEXEC` is always added.
    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(DatastoreError) -> FileDescriptor {
        while true {
            let raw = systemOpen(path, flags | O_CLOEXEC, mode)
            if raw >= 0 { return FileDescriptor(raw: raw, path: path) }
            if errno != EINTR { throw .ioFailure(operation: "open", path: path, errno: errno) }
        }
    }

    /// Opens `path` if it exists; `nil` when it does not.
    static func openIfExists(_ path: String, flags: Int32) throws(DatastoreError) -> FileDescriptor? {
        do {
            return try open(path, flags: flags)
        } catch .ioFailure(_, _, ENOENT) {
            return nil
        }
    }

    /// Closes the descriptor (releasing any `flock` held through it).
    func close() {
        _ = systemClose(raw)
    }

    /// The current size of the file, in bytes.
    func size() throws(DatastoreError) -> Int {
        var status = stat()
        guard fstat(raw, &status) == 0 else { throw .ioFailure(operation: "fstat", path: path, errno: errno) }
        return Int(status.st_size)
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    func read(count: Int, at offset: Int) throws(DatastoreError) -> [UInt8] {
        guard count > 0 else { return [] }
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            // `pread` initializes at most `count - done` bytes from `base + done`,
            // all inside the `count`-byte buffer; only those are marked initialized.
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < count {
                let result = pread(raw, base + done, count - done, off_t(offset + done))
                if result > 0 {
                    done += result
                } else if result == 0 {
                    break
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
            initialized = done
        }
        if failure != 0 { throw .ioFailure(operation: "pread", path: path, errno: failure) }
        return bytes
    }

    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: [UInt8], at offset: Int) throws(DatastoreError) {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            // `pwrite` reads at most `buffer.count - done` bytes from `base + done`.
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < buffer.count {
                let result = pwrite(raw, base + done, buffer.count - done, off_t(offset + done))
                if result >= 0 {
                    done += result
                } else if errno != EINTR {
                    failure = errno
                    return
                }
            }
        }
        if failure != 0 { throw .ioFailure(operation: "pwrite", path: path, errno: failure) }
    }

    /// Cuts the file to `length` bytes.
    func truncate(to length: Int) throws(DatastoreError) {
        while ftruncate(raw, off_t(length)) != 0 {
            if errno != EINTR { throw .ioFailure(operation: "ftruncate", path: path, errno: errno) }
        }
    }

    /// Flushes the file's data (and the metadata needed to read it) to stable storage.
    func synchronizeData() throws(DatastoreError) {
        while fdatasync(raw) != 0 {
            if errno != EINTR { throw .ioFailure(operation: "fdatasync", path: path, errno: errno) }
        }
    }

    /// Flushes the file, including its metadata, to stable storage.
    func synchronize() throws(DatastoreError) {
        while fsync(raw) != 0 {
            if errno != EINTR { throw .ioFailure(operation: "fsync", path: path, errno: errno) }
        }
    }

    /// Takes an exclusive `flock`; waits for it when `wait` is true.
    ///
    /// The kernel releases the lock when the descriptor is closed, including
    /// when the process dies. Locks belong to the open file description, so
    /// two descriptors from separate `open` calls exclude each other even
    /// inside one process, while threads sharing one descriptor do not.
    ///
    /// - Returns: `false` when `wait` is false and someone else holds the lock.
    @discardableResult
    func lockExclusively(wait: Bool) throws(DatastoreError) -> Bool {
        while flock(raw, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            switch errno {
            case EINTR: continue
            case EWOULDBLOCK: return false
            default: throw .ioFailure(operation: "flock", path: path, errno: errno)
            }
        }
        return true
    }

    /// Releases a lock taken with ``lockExclusively(wait:)``.
    func unlock() {
        _ = flock(raw, LOCK_UN)
    }
}

// The C functions, reachable from inside `FileDescriptor`, whose methods shadow their names.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func systemClose(_ descriptor: Int32) -> Int32 { close(descriptor) }
