import Glibc

/// An open file, with the system calls the library makes on files: the one
/// system-call layer of WhyCache.
///
/// Every call is retried on `EINTR` and reports a failure as a
/// ``SystemCallError`` (call, path, `errno`), turned into the error of the
/// layer that uses the descriptor: `Failure` is ``DatastoreError`` in the
/// file datastore, ``StateFileError`` in the shared-state file. A layer
/// never matches errors by the name of a call: what it needs to tell apart
/// (a file that does not exist, a lock held elsewhere) has a method of its
/// own here (``openIfExists(_:flags:mode:)``, ``lockExclusively(wait:)``,
/// ``tryLockByte(at:)``).
///
/// This is where the library's file I/O touches raw pointers: each one is
/// confined to the buffer the call fills or reads. Whoever opens a
/// descriptor closes it exactly once.
package struct FileDescriptor<Failure: SystemCallFailure>: Sendable {
    /// The kernel's descriptor number.
    package let raw: Int32

    /// The path the file was opened at, for error messages.
    package let path: String

    /// The error of `call` failing with `code`.
    private func failure(_ call: String, _ code: Int32) -> Failure {
        Failure(systemCall: SystemCallError(call: call, path: path, errno: code))
    }

    // MARK: Opening and closing

    /// Opens `path`. `flags` are `open(2)` flags; `O_CLOEXEC` is always added.
    package static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(Failure) -> FileDescriptor {
        try opening(path, flags: flags, mode: mode).mapError { Failure(systemCall: $0) }.get()
    }

    /// Opens `path` if it exists; nil when it does not (`ENOENT`).
    package static func openIfExists(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(Failure) -> FileDescriptor? {
        switch opening(path, flags: flags, mode: mode) {
        case .success(let descriptor): return descriptor
        case .failure(let error) where error.errno == ENOENT: return nil
        case .failure(let error): throw Failure(systemCall: error)
        }
    }

    /// Opens `path`, or returns the failure, for callers that tell several
    /// failures apart (a file that exists but may not be written).
    package static func opening(_ path: String, flags: Int32, mode: mode_t = 0o644) -> Swift.Result<FileDescriptor, SystemCallError> {
        while true {
            let raw = systemOpen(path, flags | O_CLOEXEC, mode)
            if raw >= 0 { return .success(FileDescriptor(raw: raw, path: path)) }
            if errno != EINTR { return .failure(SystemCallError(call: "open", path: path, errno: errno)) }
        }
    }

    /// A new descriptor, and a new open file description, of the file this
    /// one has open — whatever `path` names now (through
    /// `/proc/self/fd`). Locks taken through it (`flock`) exclude those of
    /// this descriptor, also within this process.
    package func reopen(flags: Int32) throws(Failure) -> FileDescriptor {
        switch Self.opening("/proc/self/fd/\(raw)", flags: flags) {
        case .success(let descriptor): return descriptor.naming(path)
        case .failure(let error): throw failure("open", error.errno)
        }
    }

    /// This descriptor, naming `path` in its errors (a file built under a
    /// temporary name reports the name the caller asked for).
    package func naming(_ path: String) -> FileDescriptor {
        FileDescriptor(raw: raw, path: path)
    }

    /// Closes the descriptor (releasing the locks held through its open
    /// file description when it is the description's last descriptor).
    package func close() {
        _ = systemClose(raw)
    }

    // MARK: Size

    /// The current size of the file, in bytes.
    package func size() throws(Failure) -> Int {
        var status = stat()
        guard fstat(raw, &status) == 0 else { throw failure("fstat", errno) }
        return Int(status.st_size)
    }

    /// The file's permission bits (`st_mode & 0o7777`).
    package func permissions() throws(Failure) -> mode_t {
        var status = stat()
        guard fstat(raw, &status) == 0 else { throw failure("fstat", errno) }
        return status.st_mode & 0o7777
    }

    /// Reserves the `count` bytes at `offset` on disk (`posix_fallocate`),
    /// growing the file if they reach past its end: a full disk is an error
    /// here rather than at a later write or a store into a mapping.
    package func reserve(_ count: Int, at offset: Int) throws(Failure) {
        while true {
            let code = posix_fallocate(raw, off_t(offset), off_t(count))
            if code == 0 { return }
            if code != EINTR { throw failure("posix_fallocate", code) }
        }
    }

    /// Cuts the file to `length` bytes.
    package func truncate(to length: Int) throws(Failure) {
        while ftruncate(raw, off_t(length)) != 0 {
            if errno != EINTR { throw failure("ftruncate", errno) }
        }
    }

    // MARK: Reading and writing

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    package func read(count: Int, at offset: Int) throws(Failure) -> [UInt8] {
        guard count > 0 else { return [] }
        var code: Int32 = 0
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
                    code = errno
                    break
                }
            }
            initialized = done
        }
        if code != 0 { throw failure("pread", code) }
        return bytes
    }

    /// Reads the next bytes of the file at its current position into
    /// `buffer` and returns how many; zero at the end of the file.
    package func readNext(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        switch DescriptorIO.readSome(into: buffer, from: raw) {
        case .success(let count): return count
        case .failure(let failure): throw self.failure("read", failure.errno)
        }
    }

    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: [UInt8], at offset: Int) throws(Failure) {
        var code: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            // `pwrite` reads at most `buffer.count - done` bytes from `base + done`.
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < buffer.count {
                let result = pwrite(raw, base + done, buffer.count - done, off_t(offset + done))
                if result > 0 {
                    done += result
                } else if result == 0 {
                    code = EIO
                    return
                } else if errno != EINTR {
                    code = errno
                    return
                }
            }
        }
        if code != 0 { throw failure("pwrite", code) }
    }

    /// Writes all of `bytes` at the file's current position (after short
    /// writes, the rest).
    package func writeAll(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        if let code = DescriptorIO.writeAll(bytes, to: raw) { throw failure("write", code) }
    }

    /// Flushes the file's data (and the metadata needed to read it) to stable storage.
    package func synchronizeData() throws(Failure) {
        while fdatasync(raw) != 0 {
            if errno != EINTR { throw failure("fdatasync", errno) }
        }
    }

    /// Flushes the file, including its metadata, to stable storage.
    package func synchronize() throws(Failure) {
        while fsync(raw) != 0 {
            if errno != EINTR { throw failure("fsync", errno) }
        }
    }

    // MARK: Locks

    /// Takes an exclusive `flock`; waits for it when `wait` is true.
    ///
    /// The kernel releases the lock when the descriptor is closed, including
    /// when the process dies. Locks belong to the open file description, so
    /// two descriptors from separate `open` calls exclude each other even
    /// inside one process, while threads sharing one descriptor do not.
    ///
    /// - Returns: `false` when `wait` is false and someone else holds the lock.
    @discardableResult
    package func lockExclusively(wait: Bool) throws(Failure) -> Bool {
        while flock(raw, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            switch errno {
            case EINTR: continue
            case EWOULDBLOCK: return false
            default: throw failure("flock", errno)
            }
        }
        return true
    }

    /// This descriptor once it holds the exclusive `flock`
    /// (``lockExclusively(wait:)``), or nil when `wait` is false and someone
    /// else holds it. The descriptor is closed unless it is returned: also
    /// when the lock cannot be asked for (then this throws).
    package func lockedOrClosed(wait: Bool) throws(Failure) -> FileDescriptor? {
        let locked: Bool
        do {
            locked = try lockExclusively(wait: wait)
        } catch {
            close()
            throw error
        }
        if locked { return self }
        close()
        return nil
    }

    /// Releases a lock taken with ``lockExclusively(wait:)``.
    package func unlock() {
        _ = unlocked()
    }

    /// Releases a lock taken with ``lockExclusively(wait:)`` and returns
    /// whether the kernel confirmed it (false only for a descriptor that is
    /// not open: then nothing was held through it).
    package func unlocked() -> Bool {
        while flock(raw, LOCK_UN) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    /// Takes the open-file-description write lock on the one byte at
    /// `offset` (`F_OFD_SETLK`), unless another open file description holds
    /// it: then returns false. The kernel releases the lock when the
    /// description's last descriptor is closed or the process dies; taking
    /// it again through the same description succeeds.
    package func tryLockByte(at offset: Int) throws(Failure) -> Bool {
        var lock = Self.byteLock(at: offset, type: Int16(F_WRLCK))
        guard fcntl(raw, Self.ofdSetLock, &lock) != 0 else { return true }
        switch errno {
        case EAGAIN, EACCES: return false
        case let code: throw failure("fcntl", code)
        }
    }

    /// Releases the byte lock at `offset` held through this descriptor's
    /// open file description (``tryLockByte(at:)``).
    package func unlockByte(at offset: Int) {
        var lock = Self.byteLock(at: offset, type: Int16(F_UNLCK))
        _ = fcntl(raw, Self.ofdSetLock, &lock)
    }

    /// An open-file-description lock request of `type` on the one byte at `offset`.
    private static func byteLock(at offset: Int, type: Int16) -> flock {
        var lock = flock()
        lock.l_type = type
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(offset)
        lock.l_len = 1
        lock.l_pid = 0  // required to be 0 for open-file-description locks
        return lock
    }

    /// `F_OFD_SETLK` (Linux): a byte-range lock owned by the open file
    /// description, released when the process that holds it dies.
    private static var ofdSetLock: Int32 { 37 }
}

// The C functions, reachable from inside `FileDescriptor`, whose methods shadow their names.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func systemClose(_ descriptor: Int32) -> Int32 { close(descriptor) }
