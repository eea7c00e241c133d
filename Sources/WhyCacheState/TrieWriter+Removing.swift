// Removing a key: the copy-on-write descent, and the normalization that
// keeps the tree's invariants (TrieWriter's type comment) on the way back up.

extension TrieWriter {
    mutating func remove(_ reference: UInt64, depth: Int) throws(StateFileError) -> (UInt64, Bool) {
        guard reference != 0 else { return (0, false) }
        let rest = rest(of: key, from: depth)
        if NodeRef.isLeaf(reference) {
            let leaf = try reader.leaf(reference)
            guard leaf.suffixLength == rest.count, commonPrefixLength(leaf.suffix, rest) == rest.count else {
                return (reference, false)
            }
            try release(leaf, at: reference)
            keyCount -= 1
            return (0, true)
        }
        let node = try reader.inner(reference)
        guard rest.count >= node.prefixLength, commonPrefixLength(node.prefix, rest) == node.prefixLength else {
            return (reference, false)
        }
        let branchDepth = depth + node.prefixLength
        if branchDepth == key.count {
            guard node.terminal != 0 else { return (reference, false) }
            let terminal = try reader.leaf(node.terminal)
            let own = try makeOwn(node)
            try release(terminal, at: node.terminal)
            writer.setTerminal(0, ofNodeAt: offset(of: own))
            keyCount -= 1
            return (try normalize(reader.inner(self.reference(of: own))), true)
        }
        let byte = key[branchDepth]
        let index = node.isDense ? Int(byte) : (node.sparseIndex(of: byte) ?? -1)
        let child = index >= 0 ? node.child(at: index) : 0
        guard child != 0 else { return (reference, false) }
        let (newChild, removed) = try remove(child, depth: branchDepth + 1)
        guard removed else { return (reference, false) }
        if newChild == child { return (reference, true) }
        let own = try makeOwn(node)
        if newChild != 0 {
            writer.setChild(newChild, at: index, of: own)
            return (self.reference(of: own), true)
        }
        if own.isDense {
            writer.setChild(0, at: index, of: own)
            writer.setCount(own.count - 1, ofNodeAt: offset(of: own))
        } else {
            writer.removeSparse(at: index, from: own)
        }
        return (try normalize(reader.inner(self.reference(of: own))), true)
    }

    /// Restores the invariants of an own node after a removal: merges a node
    /// left with one entry into it, and shrinks nodes that became much too big.
    private mutating func normalize(_ node: InnerView) throws(StateFileError) -> UInt64 {
        switch node.count + (node.terminal != 0 ? 1 : 0) {
        case 0:
            try release(node, at: offset(of: node))
            return 0
        case 1:
            return try mergeWithItsOnlyEntry(node)
        default:
            let roomy = node.isDense
                ? node.count <= NodeKind.denseShrinkLimit
                : node.capacity - node.count >= NodeKind.sparseShrinkSlack
            return roomy ? try shrink(node) : reference(of: node)
        }
    }

    /// Replaces `node` (dense, or sparse with unused slots) by a sparse node
    /// sized for its children, with the same prefix, children and terminal.
    private mutating func shrink(_ node: InnerView) throws(StateFileError) -> UInt64 {
        let smaller = try makeInner(
            kind: NodeKind.sparse, prefix: ByteConcatenation(node.prefix), capacity: NodeKind.sparseCapacity(for: node.count))
        let writer = self.writer
        var position = 0
        func add(_ byte: UInt8, _ child: UInt64) {
            writer.setKey(byte, at: position, of: smaller)
            writer.setChild(child, at: position, of: smaller)
            position += 1
        }
        if node.isDense {
            for byte in 0..<256 where node.child(at: byte) != 0 { add(UInt8(byte), node.child(at: byte)) }
        } else {
            for index in 0..<node.count { add(node.key(at: index), node.child(at: index)) }
        }
        writer.setCount(position, ofNodeAt: offset(of: smaller))
        writer.setTerminal(node.terminal, ofNodeAt: offset(of: smaller))
        try release(node, at: offset(of: node))
        return reference(of: smaller)
    }

    /// Replaces `node`, left with one entry, by that entry with the node's
    /// prefix (and the entry's branch byte) put in front of its own key bytes.
    private mutating func mergeWithItsOnlyEntry(_ node: InnerView) throws(StateFileError) -> UInt64 {
        let nodeOffset = offset(of: node)
        if node.terminal != 0 {
            // Only the key that ends here is left: it becomes a leaf holding the prefix.
            let terminal = try reader.leaf(node.terminal)
            let merged = try makeLeaf(suffix: ByteConcatenation(node.prefix), value: terminal.value)
            try release(terminal, at: node.terminal)
            try release(node, at: nodeOffset)
            return merged
        }
        var branch = 0
        if node.isDense {
            while node.child(at: branch) == 0 { branch += 1 }
        }
        let byte = node.isDense ? UInt8(branch) : node.key(at: 0)
        let only = node.child(at: branch)
        let merged: UInt64
        if NodeRef.isLeaf(only) {
            let leaf = try reader.leaf(only)
            merged = try makeLeaf(suffix: ByteConcatenation(node.prefix, byte, leaf.suffix), value: leaf.value)
            try release(leaf, at: only)
        } else {
            let child = try reader.inner(only)
            merged = try copy(child, prefix: ByteConcatenation(node.prefix, byte, child.prefix))
            try release(child, at: NodeRef.offset(only))
        }
        try release(node, at: nodeOffset)
        return merged
    }
}
