import Glibc
import WhyCacheSupport

/// Finds the keys whose values differ between two pinned states of one file,
/// in ascending key order, reading only the parts of the trees that differ.
///
/// **Why equal references mean equal subtrees.** A committed block is never
/// written again: the writer changes in place only the blocks its own open
/// transaction allocated, and copies every other block it changes. A block
/// reachable from the older state is retired, at the earliest, by a commit
/// after that state, and the allocator reuses it only once no reader pins a
/// state older than that commit — which the older snapshot, pinned while
/// the comparison runs, does. So when both trees hold the same reference at
/// the same key path, it names the same unchanged subtree in both, and the
/// comparison skips it. Walking the two trees side by side from the roots,
/// the comparison therefore visits the nodes on the paths to changed keys
/// (and their siblings' references), not the whole state.
///
/// Where a node was split on one side (its compressed prefix shortened
/// under a new parent) or merged, the longer prefix is compared a byte at a
/// time against the other side's branches. Where the trees hold disjoint
/// keys at a path (prefixes that part ways) or a leaf faces a subtree, both
/// sides are walked in key order, as a merge of two sorted lists — every key
/// such a walk meets but one is a change, so the comparison's cost follows
/// the number of changes, times the depth, in every case.
///
/// Every block is read through the snapshot's own ``TrieReader``, so a
/// damaged file produces ``StateFileError/corrupted(path:reason:)``.
struct TrieDiff: ~Copyable {
    /// What a difference reports: the key, and its value in the newer state
    /// (nil: the key is absent there). Both buffers are valid during the
    /// call. Returns false to stop the comparison.
    typealias Visitor = (_ key: UnsafeRawBufferPointer, _ newValue: UnsafeRawBufferPointer?) throws(StateFileError) -> Bool

    private let old: TrieReader
    private let new: TrieReader
    /// The key bytes from the roots down to the nodes being compared, in
    /// `key[0..<depth]`; a reported key continues them with a cursor's key.
    private let key: UnsafeMutableRawPointer
    private var depth = 0
    /// Whether the visitor asked to stop.
    private var stopped = false

    private static let keyCapacity = 2 * WhyCacheLimits.maximumKeyLength + 8

    /// A comparison of the tree read by `old` with the one read by `new`;
    /// both readers belong to pinned snapshots of the same file, which stay
    /// pinned while the comparison runs.
    init(old: TrieReader, new: TrieReader) {
        self.old = old
        self.new = new
        key = UnsafeMutableRawPointer.allocate(byteCount: Self.keyCapacity, alignment: 8)
    }

    deinit { key.deallocate() }

    /// Calls `visit` once for every key whose value differs between the tree
    /// rooted at `oldRoot` (read by `old`) and the one rooted at `newRoot`
    /// (read by `new`), in ascending key order, until it returns false;
    /// returns whether every difference was visited.
    @discardableResult
    mutating func forEachChange(oldRoot: UInt64, newRoot: UInt64, _ visit: Visitor) throws(StateFileError) -> Bool {
        depth = 0
        stopped = false
        try compare(oldRoot, skipping: 0, newRoot, skipping: 0, visit)
        return !stopped
    }

    /// Compares the subtrees `a` (old) and `b` (new), both at the path
    /// `key[0..<depth]`. An inner node's first `aSkip` (`bSkip`) prefix bytes
    /// are already part of the path: where one tree's node was split (its
    /// prefix shortened under a new parent) and the other's was not, the
    /// longer node is compared a byte at a time against the shorter one's
    /// branches, so that a split costs what it changed and not a walk of
    /// the whole subtree below it.
    private mutating func compare(
        _ a: UInt64, skipping aSkip: Int, _ b: UInt64, skipping bSkip: Int, _ visit: Visitor
    ) throws(StateFileError) {
        // The same block at the same path has the same consumed prefix.
        if a == b { return }
        guard a != 0, b != 0, !NodeRef.isLeaf(a), !NodeRef.isLeaf(b) else {
            try merge(a, skipping: aSkip, b, skipping: bSkip, visit)
            return
        }
        let x = try old.inner(a)
        let y = try new.inner(b)
        let xPrefix = x.pointer + NodeKind.headerSize + aSkip
        let yPrefix = y.pointer + NodeKind.headerSize + bSkip
        let xRest = x.prefixLength - aSkip
        let yRest = y.prefixLength - bSkip
        let shared = min(xRest, yRest)
        guard xRest >= 0, yRest >= 0, memcmp(xPrefix, yPrefix, shared) == 0 else {
            // The prefixes part ways: no key lies under both (or a damaged
            // file skipped past a prefix, which the walk reports).
            try merge(a, skipping: aSkip, b, skipping: bSkip, visit)
            return
        }
        // Each level consumes at least one key byte, so a damaged file
        // cannot make the walk deeper than the longest key.
        guard depth + shared <= WhyCacheLimits.maximumKeyLength else {
            throw new.corrupted("node path longer than the key limit")
        }
        (key + depth).copyMemory(from: xPrefix, byteCount: shared)
        depth += shared
        // A node whose prefix ends here branches here; the other one (when
        // its prefix goes on) continues with the next byte of its prefix.
        let xHere = xRest == shared
        let yHere = yRest == shared
        let xNext = xHere ? 0 : xPrefix.load(fromByteOffset: shared, as: UInt8.self)
        let yNext = yHere ? 0 : yPrefix.load(fromByteOffset: shared, as: UInt8.self)
        try compareTerminals(xHere ? x.terminal : 0, yHere ? y.terminal : 0, visit)
        var byte = 0
        while byte < 256 && !stopped {
            let (xByte, xChild, xSkip) = xHere ? Self.branch(of: x, from: byte) : Self.continuation(a, xNext, aSkip + shared + 1, from: byte)
            let (yByte, yChild, ySkip) = yHere ? Self.branch(of: y, from: byte) : Self.continuation(b, yNext, bSkip + shared + 1, from: byte)
            let next = min(xByte, yByte)
            guard next < 256 else { break }
            key.storeBytes(of: UInt8(truncatingIfNeeded: next), toByteOffset: depth, as: UInt8.self)
            depth += 1
            try compare(
                xByte == next ? xChild : 0, skipping: xByte == next ? xSkip : 0,
                yByte == next ? yChild : 0, skipping: yByte == next ? ySkip : 0, visit)
            depth -= 1
            byte = next + 1
        }
        depth -= shared
    }

    /// The first branch byte at or after `byte` under which `node` has a
    /// child, that child, and no prefix bytes consumed; (256, 0, 0) when
    /// there is none.
    private static func branch(of node: InnerView, from byte: Int) -> (Int, UInt64, Int) {
        if node.isDense {
            let position = node.densePosition(from: byte)
            return position < 256 ? (position, node.child(at: position), 0) : (256, 0, 0)
        }
        let index = node.sparseLowerBound(UInt8(truncatingIfNeeded: byte))
        return index < node.count ? (Int(node.key(at: index)), node.child(at: index), 0) : (256, 0, 0)
    }

    /// A node whose prefix goes on with `next`, seen as a node with that
    /// single branch: the node itself with `consumed` prefix bytes in the
    /// path, if `next` is at or after `byte`.
    private static func continuation(_ reference: UInt64, _ next: UInt8, _ consumed: Int, from byte: Int) -> (Int, UInt64, Int) {
        Int(next) >= byte ? (Int(next), reference, consumed) : (256, 0, 0)
    }

    /// Reports the key that ends at the path if its terminal leaves differ.
    private mutating func compareTerminals(_ a: UInt64, _ b: UInt64, _ visit: Visitor) throws(StateFileError) {
        if a == b { return }
        // A terminal must be a leaf (as `TrieReader.lookup` checks).
        guard a == 0 || NodeRef.isLeaf(a), b == 0 || NodeRef.isLeaf(b) else { throw new.corrupted("terminal is not a leaf") }
        let oldValue = a == 0 ? nil : try old.leaf(a).value
        let newValue = b == 0 ? nil : try new.leaf(b).value
        if let oldValue, let newValue, Self.equal(oldValue, newValue) { return }
        if try !visit(UnsafeRawBufferPointer(start: key, count: depth), newValue) { stopped = true }
    }

    /// Compares the subtrees `a` and `b` at the path entry by entry, walking
    /// both in key order. A cursor's keys start with the whole prefix of its
    /// root node, of which the first `aSkip` (`bSkip`) bytes are in the path.
    private mutating func merge(_ a: UInt64, skipping aSkip: Int, _ b: UInt64, skipping bSkip: Int, _ visit: Visitor) throws(StateFileError) {
        var older = TrieCursor(reader: old, root: a, range: .all)
        var newer = TrieCursor(reader: new, root: b, range: .all)
        var hasOlder = try older.next()
        var hasNewer = try newer.next()
        while (hasOlder || hasNewer) && !stopped {
            // Every key below a node starts with its prefix, so it is at least `skip` long.
            let olderKey = hasOlder ? UnsafeRawBufferPointer(rebasing: older.currentKey[aSkip...]) : older.currentKey
            let newerKey = hasNewer ? UnsafeRawBufferPointer(rebasing: newer.currentKey[bSkip...]) : newer.currentKey
            let order = hasOlder && hasNewer ? WhyCacheSupport.compare(olderKey, newerKey) : (hasOlder ? -1 : 1)
            if order < 0 {
                try report(olderKey, nil, visit)
                hasOlder = try older.next()
            } else if order > 0 {
                try report(newerKey, newer.currentValue, visit)
                hasNewer = try newer.next()
            } else {
                if !Self.equal(older.currentValue, newer.currentValue) {
                    try report(newerKey, newer.currentValue, visit)
                }
                hasOlder = try older.next()
                hasNewer = try newer.next()
            }
        }
    }

    /// Calls `visit` with the path's bytes followed by `suffix`.
    private mutating func report(
        _ suffix: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer?, _ visit: Visitor
    ) throws(StateFileError) {
        // A cursor's keys are at most the key limit long (it checks), and so is `depth`.
        if suffix.count > 0 { (key + depth).copyMemory(from: suffix.baseAddress.unsafelyUnwrapped, byteCount: suffix.count) }
        if try !visit(UnsafeRawBufferPointer(start: key, count: depth + suffix.count), value) { stopped = true }
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress.unsafelyUnwrapped, b.baseAddress.unsafelyUnwrapped, a.count) == 0)
    }
}
