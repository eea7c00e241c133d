/// Copy-on-write changes to the tree for one write transaction.
///
/// Nodes reachable from the last commit are never modified: a change copies
/// the nodes on the path from the root to the change (a node the transaction
/// created itself, stamped with its transaction id, is modified in place) and
/// retires the originals. The new root becomes visible only when the
/// transaction commits, so readers see all of a transaction or none of it.
///
/// Invariants kept here (and checked by `TrieVerifier`):
/// - path compression: an inner node has at least two entries (children plus
///   terminal); a node left with one entry is merged with it;
/// - a leaf stores only the key bytes below the branch that leads to it;
/// - sparse nodes keep their branch bytes sorted and hold at most
///   `NodeKind.sparseLimit` children; dense nodes hold more than
///   `NodeKind.denseShrinkLimit`;
/// - an own child is only reachable through own parents (changes copy top-down),
///   so a subtree that was changed in place needs no change above it.
struct TrieWriter {
    var allocator: SpaceAllocator
    private(set) var reader: TrieReader
    let writer: NodeWriter
    var root: UInt64
    var keyCount: UInt64

    /// The key and value of the operation in progress.
    var key = UnsafeRawBufferPointer(start: nil, count: 0)
    var value = UnsafeRawBufferPointer(start: nil, count: 0)

    init(allocator: SpaceAllocator, root: UInt64, keyCount: UInt64) {
        self.allocator = allocator
        self.reader = TrieReader(file: allocator.file, heapEnd: allocator.bump)
        self.writer = allocator.writer
        self.root = root
        self.keyCount = keyCount
    }

    private var transaction: UInt64 { allocator.transaction }

    // MARK: Public operations

    /// Sets `key` to `value`. The caller validated both lengths.
    mutating func set(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(StateFileError) {
        self.key = key
        self.value = value
        root = try insert(root, depth: 0)
    }

    /// Removes `key`; returns whether it was present.
    mutating func remove(_ key: UnsafeRawBufferPointer) throws(StateFileError) -> Bool {
        self.key = key
        let (newRoot, removed) = try remove(root, depth: 0)
        root = newRoot
        return removed
    }

    // MARK: Blocks

    mutating func allocate(_ size: Int) throws(StateFileError) -> Int {
        let offset = try allocator.allocate(size)
        reader = TrieReader(file: allocator.file, heapEnd: allocator.bump)
        return offset
    }

    func isOwn(_ node: InnerView) -> Bool { node.transaction == transaction }
    func isOwn(leafAt offset: Int) -> Bool { offset >= allocator.transactionStartBump }

    mutating func release(_ node: InnerView, at offset: Int) throws(StateFileError) {
        if isOwn(node) {
            try allocator.free(offset, size: node.blockSize)
        } else {
            allocator.retire(offset, size: node.blockSize)
        }
    }

    mutating func release(_ leaf: LeafView, at reference: UInt64) throws(StateFileError) {
        let offset = NodeRef.offset(reference)
        if isOwn(leafAt: offset) {
            try allocator.free(offset, size: leaf.blockSize)
        } else {
            allocator.retire(offset, size: leaf.blockSize)
        }
    }

    mutating func makeLeaf(suffix: ByteConcatenation, value: UnsafeRawBufferPointer) throws(StateFileError) -> UInt64 {
        let offset = try allocate(NodeKind.leafSize(suffixLength: suffix.count, valueLength: value.count))
        writer.initializeLeaf(at: offset, suffix: suffix, value: value)
        return NodeRef.leaf(at: offset)
    }

    /// A leaf for the current key's bytes from `depth` on and the current value.
    mutating func makeLeaf(keyFrom depth: Int) throws(StateFileError) -> UInt64 {
        try makeLeaf(suffix: ByteConcatenation(rest(of: key, from: depth)), value: value)
    }

    mutating func makeInner(kind: UInt8, prefix: ByteConcatenation, capacity: Int) throws(StateFileError) -> InnerView {
        let offset = try allocate(NodeKind.innerSize(kind: kind, prefixLength: prefix.count, capacity: capacity))
        writer.initializeInner(at: offset, kind: kind, prefix: prefix, capacity: capacity, transaction: transaction)
        return try reader.inner(NodeRef.inner(at: offset))
    }

    /// `node` itself if this transaction created it; otherwise a copy stamped
    /// with this transaction, the original retired.
    mutating func makeOwn(_ node: InnerView) throws(StateFileError) -> InnerView {
        if isOwn(node) { return node }
        let source = offset(of: node)
        let copy = try allocate(node.blockSize)
        writer.copyBlock(from: source, to: copy, size: node.blockSize)
        writer.setTransaction(transaction, ofNodeAt: copy)
        allocator.retire(source, size: node.blockSize)
        return try reader.inner(NodeRef.inner(at: copy))
    }

    func offset(of node: InnerView) -> Int { node.pointer - reader.base }
    func reference(of node: InnerView) -> UInt64 { NodeRef.inner(at: offset(of: node)) }

    // MARK: Insert

    private mutating func insert(_ reference: UInt64, depth: Int) throws(StateFileError) -> UInt64 {
        if reference == 0 {
            keyCount += 1
            return try makeLeaf(keyFrom: depth)
        }
        if NodeRef.isLeaf(reference) { return try insert(intoLeaf: reference, depth: depth) }

        let node = try reader.inner(reference)
        let rest = rest(of: key, from: depth)
        let common = commonPrefixLength(node.prefix, rest)
        if common < node.prefixLength { return try splitPrefix(of: node, at: common, depth: depth) }

        let branchDepth = depth + node.prefixLength
        if branchDepth == key.count {
            let terminal: UInt64
            if node.terminal != 0 {
                terminal = try replaceValue(ofLeaf: node.terminal)
                if terminal == node.terminal { return reference }
            } else {
                keyCount += 1
                terminal = try makeLeaf(keyFrom: branchDepth)
            }
            let own = try makeOwn(node)
            writer.setTerminal(terminal, ofNodeAt: offset(of: own))
            return self.reference(of: own)
        }

        let byte = key[branchDepth]
        let index = node.isDense ? Int(byte) : (node.sparseIndex(of: byte) ?? -1)
        let child = index >= 0 ? node.child(at: index) : 0
        if child != 0 {
            let newChild = try insert(child, depth: branchDepth + 1)
            if newChild == child { return reference }
            let own = try makeOwn(node)
            writer.setChild(newChild, at: index, of: own)
            return self.reference(of: own)
        }
        keyCount += 1
        let leaf = try makeLeaf(keyFrom: branchDepth + 1)
        return try addChild(leaf, under: byte, to: node)
    }

    private mutating func insert(intoLeaf reference: UInt64, depth: Int) throws(StateFileError) -> UInt64 {
        let leaf = try reader.leaf(reference)
        let rest = rest(of: key, from: depth)
        let common = commonPrefixLength(leaf.suffix, rest)
        if common == leaf.suffixLength && common == rest.count { return try replaceValue(ofLeaf: reference) }

        // The keys diverge after `common` bytes: a node with that prefix gets both.
        keyCount += 1
        let node = try makeInner(
            kind: NodeKind.sparse, prefix: ByteConcatenation(UnsafeRawBufferPointer(rebasing: rest[0..<common])),
            capacity: 4)
        // Read everything needed from the old leaf before releasing it: a
        // freed block's first word is overwritten by the free list.
        let movedBranch: UInt8? = common < leaf.suffixLength ? leaf.suffix[common] : nil
        let moved = try makeLeaf(
            suffix: ByteConcatenation(movedBranch == nil ? empty : UnsafeRawBufferPointer(rebasing: leaf.suffix[(common + 1)...])),
            value: leaf.value)
        try release(leaf, at: reference)
        let addedBranch: UInt8? = common < rest.count ? rest[common] : nil
        let added = try makeLeaf(keyFrom: addedBranch == nil ? key.count : depth + common + 1)
        try attach(moved, branch: movedBranch, to: node)
        try attach(added, branch: addedBranch, to: node)
        return self.reference(of: node)
    }

    /// Splits `node`'s prefix after `common` bytes: a new parent holds the
    /// shared bytes, the node (copied with a shorter prefix) and the new key.
    private mutating func splitPrefix(of node: InnerView, at common: Int, depth: Int) throws(StateFileError) -> UInt64 {
        keyCount += 1
        let rest = rest(of: key, from: depth)
        let parent = try makeInner(
            kind: NodeKind.sparse, prefix: ByteConcatenation(UnsafeRawBufferPointer(rebasing: node.prefix[0..<common])),
            capacity: 4)
        let lowered = try copy(node, prefix: ByteConcatenation(UnsafeRawBufferPointer(rebasing: node.prefix[(common + 1)...])))
        let branch = node.prefix[common]
        try release(node, at: offset(of: node))
        try attach(lowered, branch: branch, to: parent)
        let added = try makeLeaf(keyFrom: common < rest.count ? depth + common + 1 : key.count)
        try attach(added, branch: common < rest.count ? rest[common] : nil, to: parent)
        return self.reference(of: parent)
    }

    /// Puts `child` into a fresh own node that has room: as its terminal when
    /// `branch` is nil, else under `branch`.
    private mutating func attach(_ child: UInt64, branch: UInt8?, to node: InnerView) throws(StateFileError) {
        let current = try reader.inner(reference(of: node))
        guard let branch else {
            writer.setTerminal(child, ofNodeAt: offset(of: current))
            return
        }
        writer.insertSparse(branch, child, at: current.sparseLowerBound(branch), into: current)
    }

    /// A copy of `node` (own, same kind and children) with a different prefix.
    mutating func copy(_ node: InnerView, prefix: ByteConcatenation) throws(StateFileError) -> UInt64 {
        let copy = try makeInner(kind: node.kind, prefix: prefix, capacity: node.capacity)
        writer.setTerminal(node.terminal, ofNodeAt: offset(of: copy))
        let slots = node.isDense ? 256 : node.count
        for index in 0..<slots {
            if !node.isDense { writer.setKey(node.key(at: index), at: index, of: copy) }
            writer.setChild(node.child(at: index), at: index, of: copy)
        }
        writer.setCount(node.count, ofNodeAt: offset(of: copy))
        return reference(of: copy)
    }

    /// Adds `child` under `byte` (absent so far), growing the node if full.
    private mutating func addChild(_ child: UInt64, under byte: UInt8, to node: InnerView) throws(StateFileError) -> UInt64 {
        if node.isDense {
            let own = try makeOwn(node)
            writer.setChild(child, at: Int(byte), of: own)
            writer.setCount(own.count + 1, ofNodeAt: offset(of: own))
            return reference(of: own)
        }
        if node.count < node.capacity {
            let own = try makeOwn(node)
            writer.insertSparse(byte, child, at: own.sparseLowerBound(byte), into: own)
            return reference(of: own)
        }
        let grown: InnerView
        if node.count < NodeKind.sparseLimit {
            grown = try makeInner(kind: NodeKind.sparse, prefix: ByteConcatenation(node.prefix), capacity: NodeKind.sparseCapacity(for: node.count + 1))
            for index in 0..<node.count {
                writer.setKey(node.key(at: index), at: index, of: grown)
                writer.setChild(node.child(at: index), at: index, of: grown)
            }
            writer.setCount(node.count, ofNodeAt: offset(of: grown))
            let current = try reader.inner(reference(of: grown))
            writer.insertSparse(byte, child, at: current.sparseLowerBound(byte), into: current)
        } else {
            grown = try makeInner(kind: NodeKind.dense, prefix: ByteConcatenation(node.prefix), capacity: 256)
            for index in 0..<node.count { writer.setChild(node.child(at: index), at: Int(node.key(at: index)), of: grown) }
            writer.setChild(child, at: Int(byte), of: grown)
            writer.setCount(node.count + 1, ofNodeAt: offset(of: grown))
        }
        writer.setTerminal(node.terminal, ofNodeAt: offset(of: grown))
        try release(node, at: offset(of: node))
        return reference(of: grown)
    }

    /// The leaf with the current value in place of the leaf at `reference`:
    /// rewritten in place when this transaction created it and the size fits.
    private mutating func replaceValue(ofLeaf reference: UInt64) throws(StateFileError) -> UInt64 {
        let leaf = try reader.leaf(reference)
        let offset = NodeRef.offset(reference)
        if isOwn(leafAt: offset), leaf.blockSize == NodeKind.leafSize(suffixLength: leaf.suffixLength, valueLength: value.count) {
            writer.initializeLeaf(at: offset, suffix: ByteConcatenation(leaf.suffix), value: value)
            return reference
        }
        let replacement = try makeLeaf(suffix: ByteConcatenation(leaf.suffix), value: value)
        try release(leaf, at: reference)
        return replacement
    }
}

var empty: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

/// The bytes of `key` from `depth` on.
@inline(__always)
func rest(of key: UnsafeRawBufferPointer, from depth: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: key[depth...])
}

/// The length of the longest common prefix of `a` and `b`.
@inline(__always)
func commonPrefixLength(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let limit = min(a.count, b.count)
    var index = 0
    while index < limit && a[index] == b[index] { index += 1 }
    return index
}
