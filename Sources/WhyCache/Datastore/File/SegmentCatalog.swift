/// What one process knows about the segment files: which exist, and for each
/// one a sparse index of verified frame positions.
///
/// Everything recorded here stays true: frames are never changed once
/// written, and only bytes after the last valid frame are ever truncated.
/// The catalog may lag behind the directory (segments created or removed by
/// other processes); readers correct it as they go.
struct SegmentCatalog: Sendable {
    /// A verified position: the frame with `updateID` starts at `offset`.
    struct Mark: Sendable, Hashable {
        var updateID: UInt64
        var offset: Int
    }

    /// The verified positions of one segment, ascending. The first is the
    /// segment's first frame; the last is the end of the verified prefix
    /// (where the frame with its `updateID` would start).
    private(set) var marks: [UInt64: [Mark]] = [:]

    /// The first ids of the known segments, ascending.
    private(set) var segmentIDs: [UInt64] = []

    /// The bytes of frames between two marks, at least.
    let markInterval: Int

    /// Creates an empty catalog that keeps a mark at least every `markInterval` bytes.
    init(markInterval: Int) {
        self.markInterval = markInterval
    }

    /// The known segment that holds `updateID`, if the catalog knows one that can.
    func segment(containing updateID: UInt64) -> UInt64? {
        guard let first = segmentIDs.first, updateID >= first else { return nil }
        var low = 0
        var high = segmentIDs.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if segmentIDs[middle] <= updateID { low = middle } else { high = middle - 1 }
        }
        return segmentIDs[low]
    }

    /// The newest known segment.
    var lastSegment: UInt64? { segmentIDs.last }

    /// The verified position nearest before `updateID` in `segment`.
    func start(in segment: UInt64, for updateID: UInt64) -> Mark {
        let fallback = Mark(updateID: segment, offset: FileHeader.size)
        guard let list = marks[segment], !list.isEmpty else { return fallback }
        var low = 0
        var high = list.count - 1
        guard list[0].updateID <= updateID else { return fallback }
        while low < high {
            let middle = (low + high + 1) / 2
            if list[middle].updateID <= updateID { low = middle } else { high = middle - 1 }
        }
        return list[low]
    }

    /// The end of the verified prefix of `segment`.
    func verifiedEnd(of segment: UInt64) -> Mark {
        marks[segment]?.last ?? Mark(updateID: segment, offset: FileHeader.size)
    }

    /// Replaces the list of segments with the directory's, keeping the marks
    /// of segments that still exist.
    mutating func reset(segments: [UInt64]) {
        segmentIDs = segments
        let kept = Set(segments)
        marks = marks.filter { kept.contains($0.key) }
    }

    /// Adds a segment discovered after the last one known.
    mutating func add(segment: UInt64) {
        guard segmentIDs.last.map({ $0 < segment }) ?? true else { return }
        segmentIDs.append(segment)
    }

    /// Forgets the verified positions of `segment`, keeping the segment itself.
    mutating func forget(segment: UInt64) {
        marks[segment] = nil
    }

    /// Forgets a removed segment.
    mutating func remove(segment: UInt64) {
        segmentIDs.removeAll { $0 == segment }
        marks[segment] = nil
    }

    /// Records verified positions of `segment`. `found` holds frame starts in
    /// ascending order; `end` is the end of the verified prefix.
    mutating func record(segment: UInt64, found: [Mark], end: Mark) {
        var list = marks[segment] ?? [Mark(updateID: segment, offset: FileHeader.size)]
        // The last mark is the previous verified end, which may become an interior mark.
        for mark in found + [end] where mark.updateID > list[list.count - 1].updateID {
            if list.count >= 2 && list[list.count - 1].offset - list[list.count - 2].offset < markInterval {
                list[list.count - 1] = mark
            } else {
                list.append(mark)
            }
        }
        marks[segment] = list
    }
}
