/// Walks the keys of one pinned snapshot in ascending byte order, from the
/// first key `>= lower` to the last key `< upper`.
///
/// The walk is a depth-first traversal with an explicit stack (one frame per
/// inner node, at most one per key byte), and the current key assembled in a
/// buffer as it descends. Positioning at `lower` costs one descent: a frame is
/// "tight" while the path equals `lower`'s first bytes, and only tight frames
/// compare against it. Entering a sparse node prefetches all its children,
/// because blocks are allocated in write order, not key order: the misses of
/// one node's leaves then overlap instead of following one another. Taking a
/// child also reaches ahead among its siblings (``prefetchAhead(in:after:)``),
/// so that the next subtree's blocks are on their way while this one is
/// walked.
///
/// A non-copyable struct rather than a class: the walk mutates its stack and
/// current entry once or twice per key, and a class's stored properties would
/// pay a dynamic exclusivity check for every one of those accesses.
package struct TrieCursor: ~Copyable {
    private struct Frame {
        var node: InnerView
        /// -1: terminal not visited yet; otherwise the next sparse position or dense byte.
        var position: Int
        /// Key bytes up to and including this node's prefix.
        var pathLength: Int
        var tight: Bool
    }

    private let reader: TrieReader
    private let lower: [UInt8]?
    private let upper: [UInt8]?
    private var frames: [Frame] = []
    private let key: UnsafeMutableRawPointer
    private var pending: UInt64
    private var finished = false

    /// The key of the current entry (valid until the next call to `next`).
    package private(set) var currentKey = UnsafeRawBufferPointer(start: nil, count: 0)
    /// The value of the current entry, inside the mapping (valid while the snapshot is pinned).
    package private(set) var currentValue = UnsafeRawBufferPointer(start: nil, count: 0)

    private static let keyCapacity = 2 * WhyCacheLimits.maximumKeyLength + 8

    init(reader: TrieReader, root: UInt64, range: KeyRange) {
        self.reader = reader
        self.lower = range.lowerBound
        self.upper = range.upperBound
        self.pending = root
        key = UnsafeMutableRawPointer.allocate(byteCount: Self.keyCapacity, alignment: 8)
        frames.reserveCapacity(16)
    }

    deinit { key.deallocate() }

    /// Moves to the next entry; false at the end of the range.
    package mutating func next() throws(StateFileError) -> Bool {
        if finished { return false }
        if pending != 0 {
            let root = pending
            pending = 0
            if try enter(root, pathLength: 0, tight: lower != nil) { return try emitIfInRange() }
        }
        while !frames.isEmpty {
            let top = frames.count - 1
            let node = frames[top].node
            if frames[top].position == -1 {
                frames[top].position = firstPosition(of: frames[top])
                if node.terminal != 0 && !(frames[top].tight && lower!.count > frames[top].pathLength) {
                    let leaf = try reader.leaf(node.terminal)
                    guard leaf.suffixLength == 0 else { throw reader.corrupted("terminal leaf with a suffix") }
                    currentKey = UnsafeRawBufferPointer(start: key, count: frames[top].pathLength)
                    currentValue = leaf.value
                    return try emitIfInRange()
                }
            }
            var position = frames[top].position
            var child: UInt64 = 0
            var byte: UInt8 = 0
            if node.isDense {
                // `node.densePosition(from:)`, written out: with the call in
                // this loop, the Swift 6.3 compiler took more than six minutes
                // (instead of seconds) to compile this module.
                while position < 256 {
                    child = node.child(at: position)
                    if child != 0 { break }
                    position += 1
                }
                byte = UInt8(truncatingIfNeeded: position)
            } else if position < node.count {
                child = node.child(at: position)
                byte = node.key(at: position)
            }
            guard child != 0 else {
                frames.removeLast()
                continue
            }
            frames[top].position = position + 1
            prefetchAhead(in: node, after: position)
            let pathLength = frames[top].pathLength
            key.storeBytes(of: byte, toByteOffset: pathLength, as: UInt8.self)
            let tight = frames[top].tight && byte == lower![pathLength]
            if try enter(child, pathLength: pathLength + 1, tight: tight) { return try emitIfInRange() }
        }
        finished = true
        return false
    }

    /// Positions on `reference`: a leaf becomes the current entry (returns
    /// true unless it lies below `lower`); an inner node is pushed.
    private mutating func enter(_ reference: UInt64, pathLength: Int, tight: Bool) throws(StateFileError) -> Bool {
        if NodeRef.isLeaf(reference) {
            let leaf = try reader.leaf(reference)
            let length = pathLength + leaf.suffixLength
            guard length <= WhyCacheLimits.maximumKeyLength else { throw reader.corrupted("key longer than the limit") }
            (key + pathLength).copyMemory(from: leaf.pointer + leaf.headerLength, byteCount: leaf.suffixLength)
            currentKey = UnsafeRawBufferPointer(start: key, count: length)
            currentValue = leaf.value
            if tight, let lower, compare(currentKey, lower) < 0 { return false }
            return true
        }
        let node = try reader.inner(reference)
        let length = pathLength + node.prefixLength
        guard length < WhyCacheLimits.maximumKeyLength || (length == WhyCacheLimits.maximumKeyLength && node.count == 0) else {
            throw reader.corrupted("node path longer than the key limit")
        }
        (key + pathLength).copyMemory(from: node.pointer + NodeKind.headerSize, byteCount: node.prefixLength)
        var stillTight = tight
        if tight, let lower {
            let compared = min(length, lower.count) - pathLength
            if compared > 0 {
                let order = lower.withUnsafeBytes { bound in
                    memcmp(key + pathLength, bound.baseAddress! + pathLength, compared)
                }
                if order < 0 { return false }  // the whole subtree lies below `lower`
                if order > 0 { stillTight = false }
            }
            if lower.count <= length { stillTight = false }
        }
        if !node.isDense {
            for index in 0..<node.count { reader.prefetch(node.child(at: index), lines: 0...1) }
        }
        frames.append(Frame(node: node, position: -1, pathLength: length, tight: stillTight))
        return false
    }

    /// A two-stage prefetch among the siblings after the child at `position`,
    /// so that a walk keeps several misses in flight: the children of the
    /// next sibling (whose block was asked for earlier, see below) are asked
    /// for now, to arrive while the current child's subtree is walked; and in
    /// a dense node, whose children `enter` does not prefetch, the sibling
    /// after that is asked for, so that its block is there when the next step
    /// reads it. Only hints: a damaged reference is ignored here and reported
    /// when the walk reaches it.
    @inline(__always)
    private func prefetchAhead(in node: InnerView, after position: Int) {
        let next: UInt64
        if node.isDense {
            let sibling = node.densePosition(from: position + 1)
            guard sibling < 256 else { return }
            next = node.child(at: sibling)
            let after = node.densePosition(from: sibling + 1)
            if after < 256 { reader.prefetch(node.child(at: after), lines: 0...2) }
        } else {
            guard position + 1 < node.count else { return }
            next = node.child(at: position + 1)
        }
        guard !NodeRef.isLeaf(next), let sibling = try? reader.inner(next), !sibling.isDense else { return }
        for index in 0..<sibling.count { reader.prefetch(sibling.child(at: index), lines: 0...1) }
    }

    /// The first child position to visit in `frame`, skipping children below `lower`.
    private func firstPosition(of frame: Frame) -> Int {
        guard frame.tight, let lower, lower.count > frame.pathLength else { return 0 }
        let byte = lower[frame.pathLength]
        return frame.node.isDense ? Int(byte) : frame.node.sparseLowerBound(byte)
    }

    private mutating func emitIfInRange() throws(StateFileError) -> Bool {
        if let upper, compare(currentKey, upper) >= 0 {
            finished = true
            frames.removeAll()
            return false
        }
        return true
    }
}

import Glibc
import WhyCacheSupport
