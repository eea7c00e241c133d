import WhyCacheSupport

/// Checks the structure of a tree: bounds (through `TrieReader`), the node
/// invariants that `TrieWriter` keeps, strictly ascending keys and the key count.
struct TrieVerifier {
    let reader: TrieReader

    /// Checks the whole tree under `root`: its structure
    /// (``checkStructure(root:)``), then keys in strictly ascending order and
    /// their number against `keyCount`. Returns the number of keys.
    func verify(root: UInt64, keyCount: UInt64) throws(StateFileError) -> Int {
        try checkStructure(root: root)
        var cursor = TrieCursor(reader: reader, root: root, range: .all)
        var previous: [UInt8]? = nil
        var count = 0
        while try cursor.next() {
            let key = Array(cursor.currentKey)
            guard !key.isEmpty else { throw reader.corrupted("empty key in the tree") }
            if let previous, !previous.lexicographicallyPrecedes(key) {
                throw reader.corrupted("keys out of order")
            }
            previous = key
            count += 1
        }
        guard UInt64(count) == keyCount else {
            throw reader.corrupted("the tree holds \(count) keys, the commit record says \(keyCount)")
        }
        return count
    }

    /// Checks every node and leaf under `root` against the bounds of the heap
    /// and the node invariants that `TrieWriter` keeps (docs/FORMAT.md
    /// section 1.6), without walking the keys: the check for a caller whose
    /// own walk checks the keys (a snapshot being written).
    func checkStructure(root: UInt64) throws(StateFileError) {
        var blocks = 0
        try check(root, depth: 0, isRoot: true, blocks: &blocks)
    }

    private func check(_ reference: UInt64, depth: Int, isRoot: Bool, blocks: inout Int) throws(StateFileError) {
        guard reference != 0 else { return }
        blocks += 1
        guard depth <= WhyCacheLimits.maximumKeyLength + 1, blocks <= (reader.limit - reader.heapStart) / 8 else {
            throw reader.corrupted("the tree reaches more blocks than the heap holds")
        }
        if NodeRef.isLeaf(reference) {
            _ = try reader.leaf(reference)
            return
        }
        let node = try reader.inner(reference)
        if node.terminal != 0 {
            guard NodeRef.isLeaf(node.terminal), try reader.leaf(node.terminal).suffixLength == 0 else {
                throw reader.corrupted("terminal of a node is not a leaf with an empty suffix")
            }
        }
        let entries = node.count + (node.terminal != 0 ? 1 : 0)
        guard entries >= 2 else { throw reader.corrupted("inner node with fewer than two entries") }
        if node.isDense {
            var present = 0
            for byte in 0..<256 where node.child(at: byte) != 0 {
                present += 1
                try check(node.child(at: byte), depth: depth + 1, isRoot: false, blocks: &blocks)
            }
            guard present == node.count else { throw reader.corrupted("dense node count mismatch") }
        } else {
            for index in 0..<node.count {
                if index > 0 && node.key(at: index - 1) >= node.key(at: index) {
                    throw reader.corrupted("sparse node branch bytes out of order")
                }
                guard node.child(at: index) != 0 else { throw reader.corrupted("sparse node with an empty child") }
                try check(node.child(at: index), depth: depth + 1, isRoot: false, blocks: &blocks)
            }
        }
    }
}
