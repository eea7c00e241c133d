import WhyCacheSupport

/// Walks toward keys that a write transaction will change a few operations
/// later, one tree level per operation, prefetching each block on the way,
/// so that the change finds its path in the cache.
///
/// Why: a random insert into a large tree is a chain of dependent cache
/// misses, one per level below those the cache holds (at 10M keys of
/// workload W, a walk costs about what a get does, ~1 µs), and nothing in
/// one insert can overlap them. The walks of *different* keys are
/// independent, though: with `capacity` walks in flight, each advanced by
/// one level per operation, every miss has a whole operation's time to
/// arrive while the others' misses are outstanding too.
///
/// Only hints: a walk reads the tree while the transaction changes it (a
/// block it reached may be freed and reused by then), so every block is
/// read through `TrieReader`'s checks, a walk that meets anything it cannot
/// read simply stops, and nothing it finds is ever used but as a prefetch
/// address. A walk copies its key, so the caller's buffer need not outlive
/// the call that starts it.
struct PathPrefetcher: ~Copyable {
    private struct Walk {
        var reference: UInt64 = 0
        /// Key bytes consumed to reach `reference`.
        var depth = 0
        var keyLength = 0
    }

    /// The most walks in flight; a new walk replaces the oldest. Eight
    /// levels cover the part of a 10M-key tree that misses the cache.
    static let capacity = 8
    private static let keyStride = WhyCacheLimits.maximumKeyLength

    /// Empty until the first walk starts, so that a transaction that never
    /// starts one allocates nothing.
    private var walks: [Walk] = []
    /// The walks' keys, `keyStride` bytes per walk: walk `i`'s key is the
    /// first `walks[i].keyLength` bytes at `keys + i * keyStride`. Raw
    /// memory rather than an array: an array written and read on every
    /// operation made the 10M-key load a tenth slower.
    private var keys: UnsafeMutableRawPointer?
    private var next = 0

    init() {}

    deinit { keys?.deallocate() }

    /// Whether a walk was ever started (``advance(in:)`` has work).
    var isActive: Bool { keys != nil }

    /// Starts a walk toward `key` from `root` (replacing the oldest walk).
    /// A key longer than the limit starts none.
    mutating func start(toward key: UnsafeRawBufferPointer, from root: UInt64) {
        guard key.count <= Self.keyStride else { return }
        let keys: UnsafeMutableRawPointer
        if let allocated = self.keys {
            keys = allocated
        } else {
            keys = UnsafeMutableRawPointer.allocate(byteCount: Self.capacity * Self.keyStride, alignment: 8)
            self.keys = keys
            walks = Array(repeating: Walk(), count: Self.capacity)
        }
        let slot = next
        next = next == Self.capacity - 1 ? 0 : next + 1
        if let bytes = key.baseAddress { (keys + slot * Self.keyStride).copyMemory(from: bytes, byteCount: key.count) }
        walks[slot] = Walk(reference: root, depth: 0, keyLength: key.count)
    }

    /// Moves every walk one block down (the block it reaches was prefetched
    /// one advance earlier) and prefetches the block after it.
    mutating func advance(in reader: TrieReader) {
        guard let keys else { return }
        for slot in 0..<Self.capacity where walks[slot].reference != 0 {
            walks[slot] = Self.step(walks[slot], key: keys + slot * Self.keyStride, in: reader)
            if walks[slot].reference != 0 { reader.prefetch(walks[slot].reference, lines: 0...2) }
        }
    }

    /// `walk` one block further: to the child a lookup of its key (at `key`,
    /// `walk.keyLength` bytes) takes from its block, or to reference 0 where
    /// the walk ends (a leaf, a key that ends here, an absent child, a block
    /// that cannot be read). The prefix is skipped, not compared: a key that
    /// leaves the tree there only costs a prefetch of a block it does not
    /// need.
    private static func step(_ walk: Walk, key: UnsafeMutableRawPointer, in reader: TrieReader) -> Walk {
        var walk = walk
        guard !NodeRef.isLeaf(walk.reference), let node = try? reader.inner(walk.reference) else {
            walk.reference = 0
            return walk
        }
        let depth = walk.depth + node.prefixLength
        guard depth < walk.keyLength else {
            walk.reference = 0
            return walk
        }
        walk.reference = node.child(for: key.load(fromByteOffset: depth, as: UInt8.self))
        walk.depth = depth + 1
        return walk
    }
}
