/// The block sizes of the heap.
///
/// Every heap block has one of `SizeClass.count` sizes: 8 to 256 bytes in steps
/// of 8, then four sizes per doubling up to 128 MiB (so a block wastes less than
/// a fifth of its size to rounding above 256 bytes, and nothing below). A freed
/// block goes to the free list of its class and is reused whole: blocks are
/// never split or merged, except by recovery (see `SpaceAllocator.recover`).
struct SizeClass: Hashable, Comparable {
    /// Index into the free-list table, `0..<SizeClass.count`.
    let index: Int

    static let count = 32 + 4 * 19  // 108 classes: 8...256, then 320...128 MiB
    static let largestBlock = 1 << 27

    /// The class of the smallest block that holds `size` bytes, or nil when
    /// `size` exceeds ``largestBlock``.
    @inline(__always)
    init?(fitting size: Int) {
        if size <= 256 {
            index = size <= 8 ? 0 : (size + 7) / 8 - 1
            return
        }
        guard size <= SizeClass.largestBlock else { return nil }
        // size in (2^k, 2^(k+1)] → class step = 2^(k-2); four steps per doubling.
        let k = Int.bitWidth - 1 - (size - 1).leadingZeroBitCount  // 2^k < size
        let step = 1 << (k - 2)
        let quarter = (size - 1 - (1 << k)) / step  // 0...3
        index = 32 + (k - 8) * 4 + quarter
    }

    /// The class with this table index; nil for an index outside the table
    /// (used when decoding class numbers read from the file).
    init?(index: Int) {
        guard index >= 0 && index < SizeClass.count else { return nil }
        self.index = index
    }

    /// The block size of this class, in bytes.
    @inline(__always)
    var blockSize: Int {
        if index < 32 { return (index + 1) * 8 }
        let k = (index - 32) / 4 + 8
        let quarter = (index - 32) % 4
        return (1 << k) + (quarter + 1) * (1 << (k - 2))
    }

    /// The class of the largest block that fits in `size` bytes, or nil when
    /// `size` is below the smallest block (8 bytes).
    static func largest(notAbove size: Int) -> SizeClass? {
        guard size >= 8, let fitting = SizeClass(fitting: min(size, largestBlock)) else { return nil }
        // Class 0 (8 bytes) fits, so a class that is too large is not class 0.
        return fitting.blockSize <= size ? fitting : SizeClass(index: fitting.index - 1)
    }

    static func < (a: SizeClass, b: SizeClass) -> Bool { a.index < b.index }
}
