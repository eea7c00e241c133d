import Atomics

/// The state file a cache currently uses, replaceable while other threads
/// read it, with no lock and no reference counting on the read path.
///
/// A cache changes files rarely (its file was removed, replaced by a restore,
/// or the cache was closed) but reads it on every `get`, from many threads.
/// Retaining the file object on each read would make every reading thread
/// write to one shared cache line; instead a read announces the file it is
/// about to use in a **guard slot** of its own and the file is released only
/// when no slot names it.
///
/// **The protocol.** A reader loads the current file `p`, publishes `p` in an
/// idle slot (compare-and-swap from 0), then loads the current file again and
/// uses `p` only if it is still current; otherwise it publishes the new value
/// and checks again. A replacement stores the new current file, then scans
/// the slots and releases the old file only if no slot holds it. All of these
/// are sequentially consistent, so for a reader that uses `p` either its
/// publication comes before the scan (which then sees `p` and keeps the file)
/// or the scan comes first, and then so does the replacement's store, and the
/// reader's second load sees the new file and never touches `p`. A file
/// still guarded is kept on a retired list and released by a later
/// ``releaseUnguardedFiles()``.
///
/// When every slot is busy (more simultaneous reads than slots) a read falls
/// back to retaining the file under a mutex: slower, never failing.
final class StateFileHolder: @unchecked Sendable {
    // @unchecked: `slots` is only accessed through atomics; everything else
    // is an atomic or lives in the mutex.

    private static let slotCount = 128
    private static let slotStride = 64  // one cache line per slot

    /// The current file as an unretained object address, 0 once closed.
    private let current = ManagedAtomic<UInt>(0)

    /// `slotCount` guard slots: 0 when idle, else the address of the file
    /// the owning reader is using.
    private let slots: UnsafeMutableRawPointer

    private struct Files {
        /// The strong reference that keeps the current file alive.
        var current: SharedStateFile?
        /// Replaced files that a reader may still be using.
        var retired: [SharedStateFile] = []
    }

    private let files: Locked<Files>

    /// Holds `file` as the current file.
    init(_ file: SharedStateFile) {
        slots = UnsafeMutableRawPointer.allocate(byteCount: Self.slotCount * Self.slotStride, alignment: Self.slotStride)
        slots.initializeMemory(as: UInt8.self, repeating: 0, count: Self.slotCount * Self.slotStride)
        files = Locked(Files(current: file))
        current.store(Self.address(of: file), ordering: .sequentiallyConsistent)
    }

    deinit {
        slots.deallocate()
    }

    // MARK: Reading

    /// Calls `body` with the current file, which stays alive during the call
    /// even if another thread replaces it meanwhile; nil once closed.
    @inline(__always)
    func withCurrent<Result, Failure: Error>(
        _ body: (SharedStateFile) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        var address = current.load(ordering: .sequentiallyConsistent)
        guard address != 0 else { return nil }
        guard let slot = claimSlot(publishing: address) else { return try withRetainedCurrent(body) }
        defer { slot.store(0, ordering: .releasing) }
        while true {
            let now = current.load(ordering: .sequentiallyConsistent)
            if now == address { break }
            guard now != 0 else { return nil }
            address = now
            slot.store(address, ordering: .sequentiallyConsistent)
        }
        // The file at `address` is current and guarded by `slot`.
        let file = Unmanaged<SharedStateFile>.fromOpaque(UnsafeRawPointer(bitPattern: address).unsafelyUnwrapped)
        return try file._withUnsafeGuaranteedRef { file in
            Swift.Result { () throws(Failure) in try body(file) }
        }.get()
    }

    /// The current file, retained (for work that outlives one call), or nil once closed.
    var currentFile: SharedStateFile? {
        files.withLock { $0.current }
    }

    /// Claims an idle slot, publishing `address` in it, starting at a slot
    /// derived from the calling thread; nil when all are busy.
    @inline(__always)
    private func claimSlot(publishing address: UInt) -> UnsafeAtomic<UInt>? {
        let start = threadSpreadStart(count: Self.slotCount)
        for step in 0..<Self.slotCount {
            let slot = slotAtomic((start &+ step) & (Self.slotCount - 1))
            if slot.load(ordering: .relaxed) == 0,
                slot.compareExchange(expected: 0, desired: address, ordering: .sequentiallyConsistent).exchanged
            {
                return slot
            }
        }
        return nil
    }

    private func withRetainedCurrent<Result, Failure: Error>(
        _ body: (SharedStateFile) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let file = currentFile else { return nil }
        return try body(file)
    }

    @inline(__always)
    private func slotAtomic(_ index: Int) -> UnsafeAtomic<UInt> {
        UnsafeAtomic(at: (slots + index &* Self.slotStride).assumingMemoryBound(to: UInt.AtomicRepresentation.self))
    }

    private static func address(of file: SharedStateFile) -> UInt {
        UInt(bitPattern: Unmanaged.passUnretained(file).toOpaque())
    }

    // MARK: Replacing

    /// Makes `file` the current file (unless closed: then `file` is dropped
    /// and false returned). The previous file is released once no reader
    /// uses it, and gives up its poller lease at once (see ``retire(_:from:)``).
    @discardableResult
    func replace(with file: SharedStateFile) -> Bool {
        files.withLock { files in
            guard let old = files.current else { return false }
            install(file, retiring: old, in: &files)
            return true
        }
    }

    /// Makes `file` the current file in place of `expected`, unless the
    /// current file is no longer `expected` (another thread replaced it
    /// first: then `file` is dropped). Returns the file current afterwards,
    /// or nil once closed. Two threads that reopen a retired file at once
    /// thereby agree on one new file.
    func replace(_ expected: SharedStateFile, with file: SharedStateFile) -> SharedStateFile? {
        files.withLock { files in
            guard let old = files.current else { return nil }
            guard old === expected else { return old }
            install(file, retiring: old, in: &files)
            return file
        }
    }

    /// Stops handing out files; reads find nil from now on. Files are
    /// released once no reader uses them; the current one gives up its
    /// poller lease at once. Returns the file that was current, or nil when
    /// already closed.
    @discardableResult
    func close() -> SharedStateFile? {
        files.withLock { files in
            guard let old = files.current else { return nil }
            files.current = nil
            current.store(0, ordering: .sequentiallyConsistent)
            retire(old, from: &files)
            return old
        }
    }

    /// Makes `file` current in place of `old` (inside the mutex).
    private func install(_ file: SharedStateFile, retiring old: SharedStateFile, in files: inout Files) {
        files.current = file
        current.store(Self.address(of: file), ordering: .sequentiallyConsistent)
        retire(old, from: &files)
    }

    /// Puts `old`, no longer current, on the retired list and releases the
    /// retired files no reader uses. `old` gives up its poller lease now
    /// rather than when it is released (a snapshot may keep it for long):
    /// this process no longer updates that file, so the processes still on
    /// it must be free to elect a poller of their own.
    private func retire(_ old: SharedStateFile, from files: inout Files) {
        old.releasePollerLease()
        files.retired.append(old)
        releaseUnguarded(&files)
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool {
        current.load(ordering: .relaxed) == 0
    }

    /// Releases the replaced files that no reader uses any more.
    func releaseUnguardedFiles() {
        files.withLock { releaseUnguarded(&$0) }
    }

    private func releaseUnguarded(_ files: inout Files) {
        guard !files.retired.isEmpty else { return }
        var guarded = Set<UInt>()
        for index in 0..<Self.slotCount {
            let address = slotAtomic(index).load(ordering: .sequentiallyConsistent)
            if address != 0 { guarded.insert(address) }
        }
        files.retired.removeAll { !guarded.contains(Self.address(of: $0)) }
    }
}
