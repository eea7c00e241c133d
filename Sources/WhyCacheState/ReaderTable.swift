import Atomics
import Glibc
import WhyCacheSupport

/// A pinned read: the commit a reader is reading, protected from reclamation
/// until `ReaderTable.unpin` (docs/FORMAT.md, "Readers and reclamation").
struct Pin {
    let entry: Int
    let slot: Int
    let commitOffset: Int
    let transaction: UInt64
    let updateID: UInt64
    let root: UInt64
    let keyCount: UInt64
    let heapEnd: Int
    let time: UInt64
    let flags: UInt64
}

/// The reader slots of one open state file, as used by this process.
///
/// The file holds `readerSlotCount` slots of 64 bytes: a pinned transaction id
/// (0 when idle) and an owner pid. A slot is owned while its owner holds an
/// open-file-description lock on the slot's lock byte, which the kernel drops
/// when the owner dies; that is how a writer tells a dead reader from a slow one.
///
/// This process keeps `localCapacity` local entries, each on its own cache
/// line: a busy flag, the file slot it has claimed (lazily) and the last
/// transaction it read. A read takes any idle entry with one compare-and-swap,
/// so threads never share an entry and never wait for each other.
///
/// **The pin protocol** (wait-free, no retry): the reader stores a transaction
/// id `t` into its slot, then loads the commit pointer, finding commit `s`.
/// `t` is the transaction the entry read last time, so `t <= s`. The writer
/// reuses a block retired by commit `x` only if every pinned slot holds a value
/// `>= x`; both sides use sequentially consistent atomics, so either the writer
/// sees `t` (and `x <= t <= s`: the block is not part of commit `s`), or the
/// reader's load comes after the writer's scan and reads a commit at least as
/// new as every retired block the writer is about to reuse.
final class ReaderTable: @unchecked Sendable {
    // @unchecked: the entry memory is only accessed through atomics, and a
    // claimed entry's plain fields are touched only by the thread that claimed it.

    static let localCapacity = 256
    private static let entrySize = 64
    private static let busyOffset = 0
    private static let slotOffset = 8  // atomic: claimed file slot + 1, 0 = none
    private static let cachedTransactionOffset = 16

    let file: MappedFile
    private let entries: UnsafeMutableRawPointer
    private let lastValidatedCommit = ManagedAtomic<UInt64>(0)
    private let processID = UInt64(Processes.currentID)

    init(file: MappedFile) {
        self.file = file
        entries = UnsafeMutableRawPointer.allocate(byteCount: Self.localCapacity * Self.entrySize, alignment: 64)
        entries.initializeMemory(as: UInt8.self, repeating: 0, count: Self.localCapacity * Self.entrySize)
    }

    deinit {
        for entry in 0..<Self.localCapacity {
            let slot = Int(localWord(entry, Self.slotOffset).load(ordering: .acquiring)) - 1
            guard slot >= 0 else { continue }
            slotPinned(slot).store(0, ordering: .releasing)
            slotOwner(slot).store(0, ordering: .releasing)
            file.unlockReaderSlot(slot)
        }
        entries.deallocate()
    }

    // MARK: Atomic views

    @inline(__always) private func localWord(_ entry: Int, _ field: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (entries + entry &* Self.entrySize + field).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }
    @inline(__always) private func slotPinned(_ slot: Int) -> UnsafeAtomic<UInt64> {
        file.atomicWord(at: FileLayout.readerTableOffset + slot &* FileLayout.readerSlotSize + FileLayout.slotPinnedTransactionOffset)
    }
    @inline(__always) private func slotOwner(_ slot: Int) -> UnsafeAtomic<UInt64> {
        file.atomicWord(at: FileLayout.readerTableOffset + slot &* FileLayout.readerSlotSize + FileLayout.slotOwnerOffset)
    }
    private var highWater: UnsafeAtomic<UInt64> { file.atomicWord(at: FileLayout.readerSlotHighWaterOffset) }

    // MARK: Pinning

    /// Pins the current commit for reading. Never waits: it fails with
    /// `tooManyReaders` when all local entries or all file slots are taken.
    @inline(__always)
    func pin() throws(StateFileError) -> Pin {
        let entry = try claimEntry()
        var slot = Int(truncatingIfNeeded: localWord(entry, Self.slotOffset).load(ordering: .relaxed)) &- 1
        if slot < 0 {
            do {
                slot = try claimFileSlot()
            } catch {
                localWord(entry, Self.busyOffset).store(0, ordering: .releasing)
                throw error
            }
            localWord(entry, Self.slotOffset).store(UInt64(slot + 1), ordering: .releasing)
        }
        let cached = entries.load(fromByteOffset: entry &* Self.entrySize + Self.cachedTransactionOffset, as: UInt64.self)
        slotPinned(slot).store(max(cached, 1), ordering: .sequentiallyConsistent)
        let commitOffset = file.atomicWord(at: FileLayout.currentCommitOffset).load(ordering: .sequentiallyConsistent)
        do {
            let pin = try readCommit(at: commitOffset, entry: entry, slot: slot)
            (entries + entry &* Self.entrySize + Self.cachedTransactionOffset).storeBytes(of: pin.transaction, as: UInt64.self)
            return pin
        } catch {
            unpin(entry: entry, slot: slot)
            throw error
        }
    }

    /// Ends a read started by `pin()`; the blocks it saw may be reused afterwards.
    @inline(__always)
    func unpin(_ pin: Pin) {
        unpin(entry: pin.entry, slot: pin.slot)
    }

    @inline(__always)
    private func unpin(entry: Int, slot: Int) {
        slotPinned(slot).store(0, ordering: .releasing)
        localWord(entry, Self.busyOffset).store(0, ordering: .releasing)
    }

    @inline(__always)
    private func readCommit(at offset: UInt64, entry: Int, slot: Int) throws(StateFileError) -> Pin {
        let start = Int(truncatingIfNeeded: offset)
        if offset != lastValidatedCommit.load(ordering: .relaxed) {
            _ = try CommitRecord(at: start, in: file)
            lastValidatedCommit.store(offset, ordering: .relaxed)
        }
        let record = UnsafeRawPointer(file.base + start)
        func field(_ offset: Int) -> UInt64 { CommitRecord.field(offset, of: record) }
        return Pin(
            entry: entry, slot: slot, commitOffset: start,
            transaction: field(FileLayout.commitTransactionOffset),
            updateID: field(FileLayout.commitUpdateIDOffset),
            root: field(FileLayout.commitRootOffset),
            keyCount: field(FileLayout.commitKeyCountOffset),
            heapEnd: Int(truncatingIfNeeded: field(FileLayout.commitHeapEndOffset)),
            time: field(FileLayout.commitTimeOffset),
            flags: field(FileLayout.commitFlagsOffset))
    }

    /// Takes an idle local entry, starting at a position derived from the
    /// calling thread so that concurrent threads start at different entries.
    @inline(__always)
    private func claimEntry() throws(StateFileError) -> Int {
        let start = threadSpreadStart(count: Self.localCapacity)
        for step in 0..<Self.localCapacity {
            let entry = (start &+ step) & (Self.localCapacity - 1)
            if localWord(entry, Self.busyOffset).compareExchange(
                expected: 0, desired: 1, ordering: .acquiring
            ).exchanged {
                return entry
            }
        }
        throw .tooManyReaders(limit: Self.localCapacity)
    }

    /// Claims a free file slot for this process (once per local entry), or
    /// takes over the slot of a dead process.
    private func claimFileSlot() throws(StateFileError) -> Int {
        for slot in 0..<file.readerSlotCount {
            let owner = slotOwner(slot)
            guard owner.load(ordering: .relaxed) == 0,
                owner.compareExchange(expected: 0, desired: processID, ordering: .sequentiallyConsistent).exchanged
            else { continue }
            guard file.tryLockReaderSlot(slot) else {
                // A process that is reclaiming the slot holds its lock; leave it.
                _ = owner.compareExchange(expected: processID, desired: 0, ordering: .sequentiallyConsistent)
                continue
            }
            guard owner.load(ordering: .sequentiallyConsistent) == processID else {
                file.unlockReaderSlot(slot)
                continue
            }
            return adopt(slot)
        }
        // No free slot: take over one whose owner died (its lock is free).
        for slot in 0..<file.readerSlotCount where !isOwnedHere(slot) {
            if file.tryLockReaderSlot(slot) {
                slotOwner(slot).store(processID, ordering: .sequentiallyConsistent)
                return adopt(slot)
            }
        }
        throw .tooManyReaders(limit: file.readerSlotCount)
    }

    private func adopt(_ slot: Int) -> Int {
        slotPinned(slot).store(0, ordering: .sequentiallyConsistent)
        let water = highWater
        var current = water.load(ordering: .relaxed)
        while current < UInt64(slot + 1) {
            let (exchanged, original) = water.compareExchange(
                expected: current, desired: UInt64(slot + 1), ordering: .sequentiallyConsistent)
            if exchanged { break }
            current = original
        }
        return slot
    }

    /// Whether a local entry of this instance has claimed file slot `slot`.
    private func isOwnedHere(_ slot: Int) -> Bool {
        for entry in 0..<Self.localCapacity
        where Int(truncatingIfNeeded: localWord(entry, Self.slotOffset).load(ordering: .acquiring)) == slot + 1 {
            return true
        }
        return false
    }

    // MARK: Writer side

    /// The oldest transaction any live reader may be reading, or `UInt64.max`
    /// when no reader is pinned. Slots that pin something older than
    /// `threshold` and whose owner is dead are cleared on the way (a dead
    /// reader must not pin old data forever).
    func oldestPinned(checkingLivenessBelow threshold: UInt64) -> UInt64 {
        var oldest = UInt64.max
        let count = Int(min(highWater.load(ordering: .sequentiallyConsistent), UInt64(file.readerSlotCount)))
        for slot in 0..<count {
            let pinned = slotPinned(slot).load(ordering: .sequentiallyConsistent)
            guard pinned != 0 else { continue }
            if pinned < threshold && !isOwnedHere(slot) && file.tryLockReaderSlot(slot) {
                // Nobody holds the slot's lock: its owner died while reading.
                slotPinned(slot).store(0, ordering: .sequentiallyConsistent)
                slotOwner(slot).store(0, ordering: .sequentiallyConsistent)
                file.unlockReaderSlot(slot)
                continue
            }
            oldest = min(oldest, pinned)
        }
        return oldest
    }

    /// The number of reader slots currently owned by some process (live or
    /// not yet found dead), for statistics.
    func ownedSlotCount() -> Int {
        let count = Int(min(highWater.load(ordering: .relaxed), UInt64(file.readerSlotCount)))
        var owned = 0
        for slot in 0..<count where slotOwner(slot).load(ordering: .relaxed) != 0 { owned += 1 }
        return owned
    }

    /// The number of distinct processes that own reader slots and still
    /// exist (`kill(pid, 0)`), for statistics. A slot whose owner died is
    /// counted by ``ownedSlotCount()`` until a writer reclaims it, never here.
    func liveOwnerCount() -> Int {
        let count = Int(min(highWater.load(ordering: .relaxed), UInt64(file.readerSlotCount)))
        var owners = Set<UInt64>()
        for slot in 0..<count {
            let owner = slotOwner(slot).load(ordering: .relaxed)
            if owner != 0 { owners.insert(owner) }
        }
        return owners.filter { owner in
            guard let pid = pid_t(exactly: owner) else { return false }
            return !Processes.isGone(pid)
        }.count
    }
}
