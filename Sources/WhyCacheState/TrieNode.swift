import CWhyCacheSupport

import Glibc
import WhyCacheSupport

// The two kinds of tree block, and the only code that reads or writes them
// through raw pointers. Layouts (docs/FORMAT.md, "Tree nodes"):
//
// Leaf (8-byte aligned; referenced as `offset | 1`):
//     0  LEB128  suffixLength (1 or 2 bytes)
//        LEB128  valueLength (1 to 4 bytes)
//        suffix bytes, then value bytes; block size = roundUp8(header + suffix + value)
//
// Inner node (8-byte aligned; referenced as `offset`):
//     0  UInt8   kind: 1 = sparse, 2 = dense
//     1  UInt8   zero
//     2  UInt16  prefixLength: key bytes shared by everything below (path compression)
//     4  UInt16  count: children present
//     6  UInt16  capacity: sparse child slots (4...48), or 256 for dense
//     8  UInt64  transaction that created the node (the writer mutates its own nodes in place)
//    16  UInt64  terminal: leaf reference of the key that ends right after the prefix, or 0
//    24  prefix bytes, padded to a multiple of 8
//   sparse: `capacity` branch bytes in ascending order (padded to 8), then `capacity` UInt64 children
//   dense:  256 UInt64 children indexed by branch byte, 0 = absent
//
// Invariants kept by `TrieWriter`: an inner node has at least two entries
// (children plus terminal); a sparse node has at most `sparseLimit` children;
// every path from the root consumes at least one key byte per inner node, so a
// lookup of a k-byte key visits at most k + 1 nodes, even in a corrupted file.

enum NodeRef {
    /// Whether `reference` names a leaf (low bit set) rather than an inner node.
    @inline(__always) static func isLeaf(_ reference: UInt64) -> Bool { reference & 1 != 0 }
    /// The byte offset of the block that `reference` names.
    @inline(__always) static func offset(_ reference: UInt64) -> Int { Int(truncatingIfNeeded: reference & ~1) }
    @inline(__always) static func leaf(at offset: Int) -> UInt64 { UInt64(offset) | 1 }
    @inline(__always) static func inner(at offset: Int) -> UInt64 { UInt64(offset) }
}

enum NodeKind {
    static let sparse: UInt8 = 1
    static let dense: UInt8 = 2
    /// The most children a sparse node holds; more make it dense.
    static let sparseLimit = 48
    /// A dense node with this many children or fewer becomes sparse again.
    static let denseShrinkLimit = 36
    /// A sparse node with this many unused slots or more is copied into a
    /// smaller one (docs/FORMAT.md, "Tree nodes").
    static let sparseShrinkSlack = 6
    static let headerSize = 24
    /// The longest leaf header: a 2-byte suffix length (at most 1024) and a
    /// 4-byte value length (at most 64 MiB). Every block holds at least 8
    /// bytes, so a leaf's header can be read before its lengths are known.
    static let maximumLeafHeaderSize = 6

    @inline(__always) static func pad8(_ n: Int) -> Int { (n + 7) & ~7 }

    /// The capacity a sparse node gets when it must hold `count` children.
    /// (Even counts: a node that grew inside one transaction wastes at most one slot.)
    @inline(__always) static func sparseCapacity(for count: Int) -> Int { max(4, (count + 1) & ~1) }

    /// Block size of an inner node.
    @inline(__always)
    static func innerSize(kind: UInt8, prefixLength: Int, capacity: Int) -> Int {
        kind == dense
            ? headerSize + pad8(prefixLength) + 256 * 8
            : headerSize + pad8(prefixLength) + pad8(capacity) + capacity * 8
    }

    /// The size of a leaf's header: both lengths as varints.
    @inline(__always)
    static func leafHeaderSize(suffixLength: Int, valueLength: Int) -> Int {
        LEB128.size(of: UInt64(suffixLength)) &+ LEB128.size(of: UInt64(valueLength))
    }

    /// Block size of a leaf.
    @inline(__always)
    static func leafSize(suffixLength: Int, valueLength: Int) -> Int {
        pad8(leafHeaderSize(suffixLength: suffixLength, valueLength: valueLength) + suffixLength + valueLength)
    }
}

/// A validated view of a leaf. Constructed only by `TrieReader.leaf(_:)`,
/// which checks that the whole leaf lies inside the snapshot's heap.
struct LeafView {
    let pointer: UnsafeRawPointer
    /// Bytes before the suffix: the two varint lengths.
    let headerLength: Int
    let suffixLength: Int
    let valueLength: Int

    @inline(__always) var suffix: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointer + headerLength, count: suffixLength)
    }
    @inline(__always) var value: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointer + (headerLength &+ suffixLength), count: valueLength)
    }
    var blockSize: Int { NodeKind.leafSize(suffixLength: suffixLength, valueLength: valueLength) }
}

/// A validated view of an inner node. Constructed only by `TrieReader.inner(_:)`,
/// which checks the header and that the whole node lies inside the snapshot's heap.
struct InnerView {
    let pointer: UnsafeRawPointer
    let kind: UInt8
    let prefixLength: Int
    let count: Int
    let capacity: Int

    @inline(__always) var isDense: Bool { kind == NodeKind.dense }
    @inline(__always) var transaction: UInt64 { pointer.load(fromByteOffset: 8, as: UInt64.self) }
    @inline(__always) var terminal: UInt64 { pointer.load(fromByteOffset: 16, as: UInt64.self) }
    @inline(__always) var prefix: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointer + NodeKind.headerSize, count: prefixLength)
    }
    @inline(__always) var keysOffset: Int { NodeKind.headerSize + NodeKind.pad8(prefixLength) }
    @inline(__always) var childrenOffset: Int { isDense ? keysOffset : keysOffset + NodeKind.pad8(capacity) }
    var blockSize: Int { NodeKind.innerSize(kind: kind, prefixLength: prefixLength, capacity: capacity) }

    /// The branch byte at sparse position `index` (`index < count`).
    @inline(__always) func key(at index: Int) -> UInt8 { pointer.load(fromByteOffset: keysOffset + index, as: UInt8.self) }

    /// The child at sparse position `index`, or under branch byte `index` of a dense node.
    @inline(__always) func child(at index: Int) -> UInt64 {
        pointer.load(fromByteOffset: childrenOffset + index &* 8, as: UInt64.self)
    }

    /// The first branch byte at or after `byte` under which a dense node
    /// has a child, or 256 when there is none.
    @inline(__always)
    func densePosition(from byte: Int) -> Int {
        var position = byte
        while position < 256 && child(at: position) == 0 { position &+= 1 }
        return position
    }

    /// The child under branch byte `byte`, or 0.
    @inline(__always)
    func child(for byte: UInt8) -> UInt64 {
        if isDense { return child(at: Int(byte)) }
        guard let index = sparseIndex(of: byte) else { return 0 }
        return child(at: index)
    }

    /// The sparse position of `byte`, or nil. Compares eight branch bytes per
    /// step: a byte equal to `byte` becomes zero after the XOR, and the
    /// lowest zero byte of a word is found exactly by the borrow trick.
    @inline(__always)
    func sparseIndex(of byte: UInt8) -> Int? {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let pattern = UInt64(byte) &* ones
        let keys = pointer + keysOffset
        var index = 0
        while index < count {
            let word = keys.load(fromByteOffset: index, as: UInt64.self) ^ pattern
            let zeros = (word &- ones) & ~word & 0x8080_8080_8080_8080
            if zeros != 0 {
                let found = index + zeros.trailingZeroBitCount >> 3
                return found < count ? found : nil
            }
            index += 8
        }
        return nil
    }

    /// The first sparse position whose branch byte is `>= byte` (or `count`).
    @inline(__always)
    func sparseLowerBound(_ byte: UInt8) -> Int {
        var index = 0
        while index < count && key(at: index) < byte { index += 1 }
        return index
    }
}

/// Reads tree blocks of one snapshot, checking every reference against the
/// snapshot's heap, so that a corrupted file produces an error instead of a
/// wild read. Reading never writes and never waits.
struct TrieReader {
    let base: UnsafeRawPointer
    let heapStart: Int
    /// The snapshot's heap end: no valid block extends past it.
    let limit: Int
    /// Only for error messages. Unowned and unretained, because a reader is
    /// created for every lookup and reference counting would cost more than
    /// the lookup's arithmetic; whoever creates a reader keeps the file alive.
    unowned(unsafe) let file: MappedFile

    init(file: MappedFile, heapEnd: Int) {
        base = UnsafeRawPointer(file.base)
        heapStart = file.heapStart
        limit = heapEnd
        self.file = file
    }

    func corrupted(_ reason: String) -> StateFileError { .corrupted(path: file.path, reason: reason) }

    /// Hints the CPU to load cache lines `lines` (64-byte lines counted from
    /// the block's start) of the block `reference` names. A reference
    /// outside the snapshot's heap (a damaged file) is ignored, so the
    /// address is always inside the mapping; a prefetch never faults anyway.
    @inline(__always)
    func prefetch(_ reference: UInt64, lines: ClosedRange<Int>) {
        let offset = NodeRef.offset(reference)
        // One unsigned compare also rejects offsets that are negative as Ints.
        guard UInt(bitPattern: offset) < UInt(bitPattern: limit) else { return }
        for line in lines { whycache_prefetch(base + (offset &+ line &* 64)) }
    }

    @inline(__always)
    func leaf(_ reference: UInt64) throws(StateFileError) -> LeafView {
        let offset = NodeRef.offset(reference)
        guard offset & 7 == 0, offset >= heapStart, offset <= limit &- 8 else {
            throw corrupted("leaf reference \(reference) is outside the heap")
        }
        let pointer = base + offset
        let suffixLength: Int
        let valueLength: Int
        let headerLength: Int
        let first = pointer.load(as: UInt8.self)
        let second = pointer.load(fromByteOffset: 1, as: UInt8.self)
        if (first | second) & 0x80 == 0 {
            // Both lengths below 128: one byte each (the common case).
            (suffixLength, valueLength, headerLength) = (Int(first), Int(second), 2)
        } else {
            // The block holds at least 8 bytes, so the longest header can be read.
            let header = UnsafeRawBufferPointer(start: pointer, count: NodeKind.maximumLeafHeaderSize)
            var position = 0
            do throws(LEB128.ReadFailure) {
                suffixLength = Int(truncatingIfNeeded: try LEB128.read(header, at: &position))
                valueLength = Int(truncatingIfNeeded: try LEB128.read(header, at: &position))
            } catch {
                throw corrupted("leaf at \(offset) has a malformed header")
            }
            headerLength = position
        }
        guard suffixLength <= WhyCacheLimits.maximumKeyLength, valueLength <= WhyCacheLimits.maximumValueLength,
            offset + headerLength + suffixLength + valueLength <= limit
        else {
            throw corrupted("leaf at \(offset) has impossible lengths")
        }
        return LeafView(pointer: pointer, headerLength: headerLength, suffixLength: suffixLength, valueLength: valueLength)
    }

    @inline(__always)
    func inner(_ reference: UInt64) throws(StateFileError) -> InnerView {
        let offset = NodeRef.offset(reference)
        guard offset & 7 == 0, offset >= heapStart, offset <= limit &- NodeKind.headerSize else {
            throw corrupted("node reference \(reference) is outside the heap")
        }
        let pointer = base + offset
        let kind = pointer.load(as: UInt8.self)
        let prefixLength = Int(pointer.load(fromByteOffset: 2, as: UInt16.self))
        let count = Int(pointer.load(fromByteOffset: 4, as: UInt16.self))
        let capacity = Int(pointer.load(fromByteOffset: 6, as: UInt16.self))
        let shapeIsValid =
            kind == NodeKind.sparse
            ? capacity >= 1 && capacity <= NodeKind.sparseLimit && count <= capacity
            : kind == NodeKind.dense && capacity == 256 && count <= 256
        guard shapeIsValid, prefixLength <= WhyCacheLimits.maximumKeyLength,
            offset + NodeKind.innerSize(kind: kind, prefixLength: prefixLength, capacity: capacity) <= limit
        else {
            throw corrupted("node at \(offset) has an impossible header")
        }
        return InnerView(pointer: pointer, kind: kind, prefixLength: prefixLength, count: count, capacity: capacity)
    }

    /// The value stored under `key` in the tree rooted at `root`, as a buffer
    /// inside the mapping (valid while the snapshot stays pinned), or nil.
    func lookup(_ key: UnsafeRawBufferPointer, root: UInt64) throws(StateFileError) -> UnsafeRawBufferPointer? {
        var reference = root
        var depth = 0
        let keyBytes = key.baseAddress.unsafelyUnwrapped
        while reference != 0 {
            // A block spans two or three cache lines; ask for the ones after
            // the first while the header's line is still on its way, so that
            // a visit costs one memory latency instead of two in a row.
            prefetch(reference, lines: 1...2)
            if NodeRef.isLeaf(reference) {
                let leaf = try leaf(reference)
                guard leaf.suffixLength == key.count &- depth,
                    memcmp(leaf.pointer + leaf.headerLength, keyBytes + depth, leaf.suffixLength) == 0
                else { return nil }
                return leaf.value
            }
            let node = try inner(reference)
            if node.prefixLength > 0 {
                guard key.count &- depth >= node.prefixLength,
                    memcmp(node.pointer + NodeKind.headerSize, keyBytes + depth, node.prefixLength) == 0
                else { return nil }
                depth &+= node.prefixLength
            }
            if depth == key.count {
                reference = node.terminal
                // A terminal must be a leaf; an inner node here would let a
                // corrupted file loop without consuming key bytes.
                guard reference == 0 || NodeRef.isLeaf(reference) else { throw corrupted("terminal is not a leaf") }
                continue
            }
            reference = node.child(for: key[depth])
            depth &+= 1
        }
        return nil
    }
}

/// Writes tree blocks that the current write transaction owns (allocated by it
/// and not yet published), so that no reader can observe the stores.
struct NodeWriter {
    let base: UnsafeMutableRawPointer

    /// Initializes a leaf at `offset`. The caller guarantees the block holds
    /// `NodeKind.leafSize(...)` bytes and belongs to the current transaction.
    ///
    /// The suffix may lie inside the block itself (a leaf rewritten in place
    /// with a new value): it is moved first, with overlap allowed, and the
    /// header, which may be longer or shorter than before, written after it.
    func initializeLeaf(at offset: Int, suffix: ByteConcatenation, value: UnsafeRawBufferPointer) {
        let pointer = base + offset
        let headerLength = NodeKind.leafHeaderSize(suffixLength: suffix.count, valueLength: value.count)
        suffix.copy(to: pointer + headerLength)
        let suffixLengthSize = LEB128.write(UInt64(suffix.count), to: pointer)
        _ = LEB128.write(UInt64(value.count), to: pointer + suffixLengthSize)
        if value.count > 0 {
            (pointer + headerLength + suffix.count).copyMemory(from: value.baseAddress.unsafelyUnwrapped, byteCount: value.count)
        }
    }

    /// Writes an empty inner node header and prefix at `offset`. The caller
    /// guarantees the block is large enough for `kind`, `prefix` and `capacity`
    /// and belongs to the current transaction. Children and terminal are zero.
    func initializeInner(at offset: Int, kind: UInt8, prefix: ByteConcatenation, capacity: Int, transaction: UInt64) {
        let pointer = base + offset
        prefix.copy(to: pointer + NodeKind.headerSize)
        let prefixLength = prefix.count
        pointer.storeBytes(of: kind, as: UInt8.self)
        pointer.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
        pointer.storeBytes(of: UInt16(prefixLength), toByteOffset: 2, as: UInt16.self)
        pointer.storeBytes(of: 0, toByteOffset: 4, as: UInt16.self)
        pointer.storeBytes(of: UInt16(capacity), toByteOffset: 6, as: UInt16.self)
        pointer.storeBytes(of: transaction, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)
        let keysOffset = NodeKind.headerSize + NodeKind.pad8(prefixLength)
        let size = NodeKind.innerSize(kind: kind, prefixLength: prefixLength, capacity: capacity)
        (pointer + keysOffset).initializeMemory(as: UInt8.self, repeating: 0, count: size - keysOffset)
    }

    /// Copies the `size`-byte block at `source` to `destination`.
    @inline(__always)
    func copyBlock(from source: Int, to destination: Int, size: Int) {
        (base + destination).copyMemory(from: base + source, byteCount: size)
    }

    @inline(__always) func setTransaction(_ transaction: UInt64, ofNodeAt offset: Int) {
        (base + offset).storeBytes(of: transaction, toByteOffset: 8, as: UInt64.self)
    }
    @inline(__always) func setTerminal(_ reference: UInt64, ofNodeAt offset: Int) {
        (base + offset).storeBytes(of: reference, toByteOffset: 16, as: UInt64.self)
    }
    @inline(__always) func setCount(_ count: Int, ofNodeAt offset: Int) {
        (base + offset).storeBytes(of: UInt16(count), toByteOffset: 4, as: UInt16.self)
    }
    /// Stores child `reference` at slot `index` (sparse position or dense byte).
    @inline(__always) func setChild(_ reference: UInt64, at index: Int, of node: InnerView) {
        UnsafeMutableRawPointer(mutating: node.pointer).storeBytes(
            of: reference, toByteOffset: node.childrenOffset + index * 8, as: UInt64.self)
    }
    @inline(__always) func setKey(_ byte: UInt8, at index: Int, of node: InnerView) {
        UnsafeMutableRawPointer(mutating: node.pointer).storeBytes(of: byte, toByteOffset: node.keysOffset + index, as: UInt8.self)
    }

    /// Inserts (`byte`, `child`) at sparse position `index`, shifting later
    /// entries up. The caller guarantees `node.count < node.capacity`.
    func insertSparse(_ byte: UInt8, _ child: UInt64, at index: Int, into node: InnerView) {
        let pointer = UnsafeMutableRawPointer(mutating: node.pointer)
        let keys = pointer + node.keysOffset
        let children = pointer + node.childrenOffset
        let moving = node.count - index
        if moving > 0 {
            (keys + index + 1).copyMemory(from: keys + index, byteCount: moving)
            (children + (index + 1) * 8).copyMemory(from: children + index * 8, byteCount: moving * 8)
        }
        keys.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
        children.storeBytes(of: child, toByteOffset: index * 8, as: UInt64.self)
        pointer.storeBytes(of: UInt16(node.count + 1), toByteOffset: 4, as: UInt16.self)
    }

    /// Removes sparse position `index`, shifting later entries down.
    func removeSparse(at index: Int, from node: InnerView) {
        let pointer = UnsafeMutableRawPointer(mutating: node.pointer)
        let keys = pointer + node.keysOffset
        let children = pointer + node.childrenOffset
        let moving = node.count - index - 1
        if moving > 0 {
            (keys + index).copyMemory(from: keys + index + 1, byteCount: moving)
            (children + index * 8).copyMemory(from: children + (index + 1) * 8, byteCount: moving * 8)
        }
        pointer.storeBytes(of: UInt16(node.count - 1), toByteOffset: 4, as: UInt16.self)
    }
}
