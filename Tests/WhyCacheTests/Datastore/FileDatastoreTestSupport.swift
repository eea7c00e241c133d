import Foundation
import WhyCache

/// Helpers for the file datastore tests: opening stores, finding and damaging files.
enum FileDatastoreFixture {
    /// Options with small segments, so that tests cross segment boundaries.
    static let smallSegments = FileDatastoreOptions(syncPolicy: .never, segmentSize: 4_096, readChunkSize: 4_096)

    /// A fresh, initialized store in `directory`.
    static func makeStore(_ directory: String, options: FileDatastoreOptions = smallSegments) async throws -> FileDatastore {
        let store = try FileDatastore(directory: directory, options: options)
        try await store.createIfMissing()
        return store
    }

    /// The segment files of `directory`, oldest first.
    static func segmentPaths(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("segment-") && $0.hasSuffix(".log") }
            .sorted()
            .map { directory + "/" + $0 }
    }

    /// The size of the file at `path`.
    static func size(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.intValue ?? -1
    }

    /// Cuts the file at `path` to `length` bytes.
    static func truncate(_ path: String, to length: Int) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(length))
    }

    /// Appends `bytes` to the file at `path`.
    static func append(_ bytes: [UInt8], to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
    }

    /// Inverts the byte at `offset` of the file at `path`.
    static func flipByte(_ path: String, at offset: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[offset] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Every record of `store`.
    static func allRecords(_ store: some Datastore) async throws -> [LogEntry] {
        var entries: [LogEntry] = []
        for try await entry in store.records(after: 0) { entries.append(entry) }
        return entries
    }

    /// Decodes a payload written by the helper's datastore commands
    /// (`"<tag> <index> <size>\n"` and `size` filler bytes), or `nil` if it is damaged.
    static func parseHelperPayload(_ bytes: [UInt8]) -> (tag: String, index: Int)? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let fields = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard fields.count == 3, let index = Int(fields[1]), let size = Int(fields[2]) else { return nil }
        let filler = bytes[(newline + 1)...]
        guard filler.count == size, size <= fillerPattern.count - 256 else { return nil }
        // One `memcmp` against the pattern: the crash tests check every byte
        // of thousands of payloads of up to 150 kB, which a loop in the
        // unoptimized test build took minutes to do.
        let start = Int(UInt8(truncatingIfNeeded: index))
        let intact = size == 0 || filler.withUnsafeBytes { filler in
            fillerPattern.withUnsafeBytes { pattern in memcmp(filler.baseAddress!, pattern.baseAddress! + start, size) == 0 }
        }
        return intact ? (String(fields[0]), index) : nil
    }

    /// The bytes 0, 1, …, 255, 0, 1, … for 256 bytes more than the largest
    /// payload: the filler of the payload of index `i` is this from `i % 256`.
    private static let fillerPattern: [UInt8] = (0..<(256 + (1 << 20))).map { UInt8(truncatingIfNeeded: $0) }
}
