import Glibc

/// The memory-mapping system calls: the shared state file's one mapping,
/// made once at open and released when the file is closed.
package enum MemoryMapping {
    /// Maps the first `size` bytes of `file`, shared and writable, reserving
    /// no swap for them (`MAP_NORESERVE`): stores into the mapping are stores
    /// into the file, seen by every process that maps it. Returns the base
    /// address. `size` may exceed the file's length: pages past its end are
    /// address space only until the file grows over them.
    ///
    /// The caller releases the mapping with ``unmap(_:size:)`` exactly once,
    /// after the last access through it.
    package static func mapShared<Failure>(
        _ file: FileDescriptor<Failure>, size: Int
    ) throws(Failure) -> UnsafeMutableRawPointer {
        let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, file.raw, 0)
        guard let base, base != UnsafeMutableRawPointer(bitPattern: -1) else {  // MAP_FAILED
            throw Failure(systemCall: SystemCallError(call: "mmap", path: file.path, errno: errno))
        }
        return base
    }

    /// Releases a mapping made by ``mapShared(_:size:)``.
    ///
    /// The caller guarantees that `base` and `size` are those of a live
    /// mapping and that nothing reads or writes through it afterwards.
    package static func unmap(_ base: UnsafeMutableRawPointer, size: Int) {
        munmap(base, size)
    }

    /// Drops this process's page-table entries for a shared, file-backed
    /// mapping (`MADV_DONTNEED`): the pages stay in the page cache and in
    /// the file, and the next access maps them again. Nothing is lost, and
    /// pointers into the mapping stay valid.
    ///
    /// The caller guarantees that `base` and `size` are those of a live
    /// mapping made by ``mapShared(_:size:)`` (on an anonymous or private
    /// mapping the call would zero the pages).
    package static func releaseResidentPages(_ base: UnsafeMutableRawPointer, size: Int) {
        _ = madvise(base, size, MADV_DONTNEED)
    }
}
