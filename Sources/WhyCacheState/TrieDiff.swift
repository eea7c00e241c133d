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
/// Where the two trees are shaped differently at a path (a leaf on one
/// side, or inner nodes whose compressed prefixes differ after a split or a
/// merge), the subtrees under that path are compared by walking both in key
/// order, as a merge of two sorted lists.
///
/// Every block is read through the snapshot's own ``TrieReader``, so a
/// damaged file produces ``StateFileError/corrupted(path:reason:)``.
struct TrieDiff: ~Copyable {
    /// What a difference reports: the key, and its value in the newer state
    /// (nil: the key is absent there). Both buffers are valid during the call.
    typealias Visitor = (_ key: UnsafeRawBufferPointer, _ newValue: UnsafeRawBufferPointer?) throws(StateFileError) -> Void

    private let old: TrieReader
    private let new: TrieReader
    /// The key bytes from the roots down to the nodes being compared, in
    /// `key[0..<depth]`; a reported key continues them with a cursor's key.
    private let key: UnsafeMutableRawPointer
    private var depth = 0

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
    /// (read by `new`), in ascending key order.
    mutating func forEachChange(oldRoot: UInt64, newRoot: UInt64, _ visit: Visitor) throws(StateFileError) {
        depth = 0
        try compare(oldRoot, newRoot, visit)
    }

    /// Compares the subtrees `a` (old) and `b` (new) that both lie at the path `key[0..<depth]`.
    private mutating func compare(_ a: UInt64, _ b: UInt64, _ visit: Visitor) throws(StateFileError) {
        if a == b { return }
        if a != 0, b != 0, !NodeRef.isLeaf(a), !NodeRef.isLeaf(b) {
            let x = try old.inner(a)
            let y = try new.inner(b)
            let prefixLength = x.prefixLength
            if prefixLength == y.prefixLength,
                memcmp(x.pointer + NodeKind.headerSize, y.pointer + NodeKind.headerSize, prefixLength) == 0
            {
                // Each level consumes at least one key byte, so a damaged
                // file cannot make the walk deeper than the longest key.
                guard depth + prefixLength <= WhyCacheLimits.maximumKeyLength else {
                    throw new.corrupted("node path longer than the key limit")
                }
                (key + depth).copyMemory(from: x.pointer + NodeKind.headerSize, byteCount: prefixLength)
                depth += prefixLength
                try compareTerminals(x.terminal, y.terminal, visit)
                var byte = 0
                while byte < 256 {
                    let (oldByte, oldChild) = Self.branch(of: x, from: byte)
                    let (newByte, newChild) = Self.branch(of: y, from: byte)
                    let next = min(oldByte, newByte)
                    guard next < 256 else { break }
                    key.storeBytes(of: UInt8(truncatingIfNeeded: next), toByteOffset: depth, as: UInt8.self)
                    depth += 1
                    try compare(oldByte == next ? oldChild : 0, newByte == next ? newChild : 0, visit)
                    depth -= 1
                    byte = next + 1
                }
                depth -= prefixLength
                return
            }
        }
        try merge(a, b, visit)
    }

    /// The first branch byte at or after `byte` under which `node` has a
    /// child, and that child; (256, 0) when there is none.
    private static func branch(of node: InnerView, from byte: Int) -> (Int, UInt64) {
        if node.isDense {
            let position = node.densePosition(from: byte)
            return position < 256 ? (position, node.child(at: position)) : (256, 0)
        }
        let index = node.sparseLowerBound(UInt8(truncatingIfNeeded: byte))
        return index < node.count ? (Int(node.key(at: index)), node.child(at: index)) : (256, 0)
    }

    /// Reports the key that ends at the path if its terminal leaves differ.
    private mutating func compareTerminals(_ a: UInt64, _ b: UInt64, _ visit: Visitor) throws(StateFileError) {
        if a == b { return }
        // A terminal must be a leaf (as `TrieReader.lookup` checks).
        guard a == 0 || NodeRef.isLeaf(a), b == 0 || NodeRef.isLeaf(b) else { throw new.corrupted("terminal is not a leaf") }
        let oldValue = a == 0 ? nil : try old.leaf(a).value
        let newValue = b == 0 ? nil : try new.leaf(b).value
        if let oldValue, let newValue, Self.equal(oldValue, newValue) { return }
        try visit(UnsafeRawBufferPointer(start: key, count: depth), newValue)
    }

    /// Compares the subtrees `a` and `b` at the path entry by entry, walking
    /// both in key order.
    private mutating func merge(_ a: UInt64, _ b: UInt64, _ visit: Visitor) throws(StateFileError) {
        var older = TrieCursor(reader: old, root: a, range: .all)
        var newer = TrieCursor(reader: new, root: b, range: .all)
        var hasOlder = try older.next()
        var hasNewer = try newer.next()
        while hasOlder || hasNewer {
            let order = hasOlder && hasNewer ? WhyCacheSupport.compare(older.currentKey, newer.currentKey) : (hasOlder ? -1 : 1)
            if order < 0 {
                try report(older.currentKey, nil, visit)
                hasOlder = try older.next()
            } else if order > 0 {
                try report(newer.currentKey, newer.currentValue, visit)
                hasNewer = try newer.next()
            } else {
                if !Self.equal(older.currentValue, newer.currentValue) {
                    try report(newer.currentKey, newer.currentValue, visit)
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
        try visit(UnsafeRawBufferPointer(start: key, count: depth + suffix.count), value)
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress.unsafelyUnwrapped, b.baseAddress.unsafelyUnwrapped, a.count) == 0)
    }
}
