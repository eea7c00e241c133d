import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// Creates (or opens) the state file at `path` and commits `entries` with
/// `updateID` as a state built from a log (initialized).
@discardableResult
func makeInitializedState(
    at path: String, entries: [(key: [UInt8], value: [UInt8])], updateID: UInt64
) throws -> SharedStateFile {
    let file = try SharedStateFile.open(at: path)
    try file.write { transaction in
        for (key, value) in entries { try transaction.setValue(value, forKey: key) }
        try transaction.setUpdateID(updateID)
        try transaction.markInitialized()
    }
    return file
}

/// The snapshot of `file`'s current state, written by `writer` into memory.
func snapshotBytes(
    of file: SharedStateFile, writer: SnapshotWriter = SnapshotWriter(),
    progress: ((SnapshotProgress) -> Void)? = nil
) throws -> (bytes: [UInt8], summary: SnapshotSummary) {
    let view = try file.snapshot()
    defer { view.close() }
    var bytes: [UInt8] = []
    let summary = try writer.write(view, to: { bytes.append(contentsOf: $0) }, progress: progress)
    return (bytes, summary)
}

/// A source over `bytes` that hands out at most `chunk` bytes per call, so
/// that reads split fields and varints at every kind of boundary.
func memorySource(_ bytes: [UInt8], chunk: Int = .max) -> SnapshotSource {
    memorySource(bytes) { chunk }
}

/// A source over `bytes` whose calls hand out pseudo-random amounts, 1...`maximum`.
func randomChunkSource(_ bytes: [UInt8], seed: UInt64, maximum: Int = 4096) -> SnapshotSource {
    var generator = SeededGenerator(seed: seed)
    return memorySource(bytes) { Int.random(in: 1...maximum, using: &generator) }
}

/// A source over `bytes` that hands out one byte per call and runs `action`
/// just before it hands out the byte at `offset`: something that happens to
/// the state file while a restore reads the snapshot.
func memorySource(_ bytes: [UInt8], runningAt offset: Int, _ action: @escaping () throws(SnapshotError) -> Void) -> SnapshotSource {
    var served = 0
    return { (buffer) throws(SnapshotError) in
        if served == offset { try action() }
        let count = min(1, bytes.count - served)
        if count > 0 { buffer[0] = bytes[served] }
        served += count
        return count
    }
}

/// A source over `bytes` that hands out at most `nextChunk()` bytes per call.
private func memorySource(_ bytes: [UInt8], nextChunk: @escaping () -> Int) -> SnapshotSource {
    var offset = 0
    return { buffer in
        let count = min(nextChunk(), buffer.count, bytes.count - offset)
        guard count > 0, let start = buffer.baseAddress else { return 0 }
        bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
        offset += count
        return count
    }
}

/// Every entry of the current state of the file at `path`.
func stateEntries(at path: String) throws -> [(key: [UInt8], value: [UInt8])] {
    let file = try SharedStateFile.open(at: path)
    let view = try file.snapshot()
    defer { view.close() }
    return try view.entries()
}

/// Whether two entry lists are equal, key by key and value by value.
func sameEntries(_ a: [(key: [UInt8], value: [UInt8])], _ b: [(key: [UInt8], value: [UInt8])]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
}

/// The bytes of the file at `path`.
func fileContents(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The names in `directory`, sorted.
func directoryNames(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
}

/// Runs `body`, which must throw a ``SnapshotError``, and returns it (nil,
/// with a recorded issue, when it returns or throws something else).
func snapshotError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> SnapshotError? {
    do {
        try body()
        Issue.record("expected a SnapshotError, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SnapshotError {
        return error
    } catch {
        Issue.record("expected a SnapshotError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Runs `/usr/bin/env gzip arguments...` and expects it to succeed.
func runGzip(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["gzip"] + arguments
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "gzip \(arguments) failed", sourceLocation: sourceLocation)
}

/// A snapshot stream encoded by hand from docs/FORMAT.md section 6,
/// independently of the library, so that tests can check the library's
/// bytes against the documented layout and build streams that break one
/// rule at a time.
struct HandmadeSnapshot {
    var version: UInt32 = 1
    var flags: UInt32 = 0
    var updateID: UInt64 = 50
    var commitTime: UInt64 = 0
    var prefixes: [[UInt8]] = []
    var entries: [(key: [UInt8], value: [UInt8])] = []
    /// The key count of the header; the number of entries when nil.
    var headerKeyCount: UInt64?
    /// The key count of the trailer; the header's when nil.
    var trailerKeyCount: UInt64?
    /// Replaces the encoded key-length varint of every entry when set.
    var keyLengthEncoding: ((Int) -> [UInt8])?
    /// Bytes after the trailer.
    var trailing: [UInt8] = []

    func encoded() -> [UInt8] {
        var prefixList: [UInt8] = []
        for prefix in prefixes {
            prefixList += Self.varint(UInt64(prefix.count)) + prefix
        }
        let headerKeyCount = self.headerKeyCount ?? UInt64(entries.count)
        var stream = Array("WCSNAPSH".utf8)
        stream += Self.littleEndian(version)
        stream += Self.littleEndian(UInt32(48 + prefixList.count + 4))
        stream += Self.littleEndian(flags)
        stream += Self.littleEndian(UInt32(prefixes.count))
        stream += Self.littleEndian(updateID)
        stream += Self.littleEndian(headerKeyCount)
        stream += Self.littleEndian(commitTime)
        stream += prefixList
        stream += Self.littleEndian(CRC32C.checksum(stream))
        for (key, value) in entries {
            stream += keyLengthEncoding?(key.count) ?? Self.varint(UInt64(key.count))
            stream += key + Self.varint(UInt64(value.count)) + value
        }
        stream += Array("WCSNPEND".utf8) + Self.littleEndian(trailerKeyCount ?? headerKeyCount)
        stream += Self.littleEndian(CRC32C.checksum(stream))
        return stream + trailing
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var rest = value
        var bytes: [UInt8] = []
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        return bytes + [UInt8(rest)]
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}
