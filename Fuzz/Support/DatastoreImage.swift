// The files of a file datastore's directory, cut from one fuzz input, for
// the targets that read segment and checkpoint files through FileDatastore.

import Foundation
@testable import WhyCache

/// A file datastore's directory as one byte string: its files one after the
/// other, each starting with its 32-byte header (docs/FORMAT.md §3.3).
///
/// The input is cut before every file magic (`WCLOGSEG`, `WCLOGDIR`,
/// `WCCHKPNT`); each piece becomes the file its magic names — a segment or
/// a checkpoint named after the value field of its header (bytes 16..<24),
/// or `datastore.meta` — so mutations of a header's value move the file as
/// well. Bytes before the first magic form a segment starting at id 1. A
/// directory without a `datastore.meta` gets a valid one (nothing removed).
struct DatastoreImage {
    /// The files, by name, in input order (a later piece of the same name wins).
    var files: [(name: String, bytes: [UInt8])] = []

    private static let magics: [(FileHeader.Kind, [UInt8])] = [
        (.segment, Array("WCLOGSEG".utf8)), (.metadata, Array("WCLOGDIR".utf8)), (.checkpoint, Array("WCCHKPNT".utf8)),
    ]

    /// Cuts `bytes` into files.
    init(_ bytes: [UInt8]) {
        var starts: [Int] = []
        var index = 0
        while index + 8 <= bytes.count {
            if Self.kind(startingAt: index, of: bytes) != nil { starts.append(index) }
            index += 1
        }
        if starts.first != 0 { starts.insert(0, at: 0) }
        for (position, start) in starts.enumerated() {
            let end = position + 1 < starts.count ? starts[position + 1] : bytes.count
            let piece = Array(bytes[start..<end])
            let value = piece.count >= 24 ? piece.loadLittleEndian(UInt64.self, at: 16) : 1
            let layout = FileDatastoreLayout(directory: "")
            switch Self.kind(startingAt: start, of: bytes) ?? .segment {
            case .segment: files.append((String(layout.segmentPath(value).dropFirst()), piece))
            case .checkpoint: files.append((String(layout.checkpointPath(value).dropFirst()), piece))
            case .metadata: files.append(("datastore.meta", piece))
            }
        }
        if !files.contains(where: { $0.name == "datastore.meta" }) {
            files.insert(("datastore.meta", FileHeader(kind: .metadata, value: 0).encoded), at: 0)
        }
    }

    /// The concatenation of the files of `directory` that a datastore reads
    /// (metadata, segments, checkpoints), in name order: the input that
    /// rebuilds it.
    static func capture(_ directory: String) -> [UInt8] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().filter { $0.hasSuffix(".meta") || $0.hasSuffix(".log") || $0.hasSuffix(".ckpt") }
            .flatMap { Scratch.read("\(directory)/\($0)") }
    }

    /// Empties `directory` (creating it if needed) and writes the files into it.
    func write(to directory: String) {
        Scratch.remove(directory)
        Scratch.createDirectory(directory)
        for (name, bytes) in files { Scratch.write(bytes, to: "\(directory)/\(name)") }
    }

    /// Writes the image of the input `data`/`size` into `directory` and runs
    /// `exercise` on it, then does the same with its checksums repaired:
    /// how the pipeline targets read their input twice.
    static func exerciseEachVariant(
        of data: UnsafePointer<UInt8>, count size: Int, in directory: String, _ exercise: @escaping @Sendable () async -> Void
    ) {
        let image = DatastoreImage(Array(UnsafeBufferPointer(start: data, count: size)))
        for variant in [image, image.repaired] {
            variant.write(to: directory)
            runBlocking { await exercise() }
        }
    }

    /// These files with every checksum recomputed (``ChecksumRepair``).
    var repaired: DatastoreImage {
        var copy = self
        for index in copy.files.indices { ChecksumRepair.datastoreFile(&copy.files[index].bytes) }
        return copy
    }

    private static func kind(startingAt index: Int, of bytes: [UInt8]) -> FileHeader.Kind? {
        guard index + 8 <= bytes.count else { return nil }
        return magics.first { bytes[index..<index + 8].elementsEqual($0.1) }?.0
    }
}

extension FileHeader {
    /// The value a datastore file of `kind` in `bytes` is named after (a
    /// segment's first id, a checkpoint's update id) when its header is
    /// valid and the value at least 1; else 1, so that every input has a
    /// name the datastore looks for.
    static func fuzzedName(of bytes: [UInt8], expecting kind: Kind) -> UInt64 {
        if case .success(let header) = decode(bytes, expecting: kind), header.value >= 1 { return header.value }
        return 1
    }
}

extension Scratch {
    /// A new empty datastore folder in the scratch directory, as a layout.
    static func datastoreLayout() -> FileDatastoreLayout {
        let directory = path("log")
        createDirectory(directory)
        return FileDatastoreLayout(directory: directory)
    }
}

/// Small pages (three records or 1 KiB), so that paging through segments
/// and checkpoints, and the positions of the segment walk, are exercised.
let smallPages = DatastorePageLimits(maximumCount: 3, maximumBytes: 1024)
