import Glibc

/// Runs of an external merge sort: operations (sets and deletes) gathered
/// in log order into a bounded in-memory arena, sorted by key, and written
/// to a private file in key order, one entry per key (the latest operation
/// of the run). ``SortedStateBuilder`` merges the runs.
///
/// A run file is a sequence of entries, nothing else:
///
/// ```text
/// u8 kind (LogOperationKind raw value) · varint keyLength · key · varint valueLength · value
/// ```
///
/// It lives only while one build runs, is never shared and never outlives a
/// crash (its name starts with the scratch prefix and the builder's process
/// id, so `AbandonedFiles` deletes it), so it carries no header or checksum.
struct SortedRunWriter {
    /// Where one operation lies in the arena.
    private struct Slot {
        /// The entry's first byte (its kind); later operations lie further on.
        var entry: Int
        /// The key's first byte.
        var key: Int
        /// The key's length.
        var keyLength: Int
        /// One past the entry's last byte.
        var end: Int
    }

    private var arena: [UInt8] = []
    private var slots: [Slot] = []
    /// The arena size at which ``isFull`` says to write a run.
    let budget: Int

    /// A writer that gathers about `budget` bytes per run.
    init(budget: Int) {
        self.budget = budget
        arena.reserveCapacity(budget + (64 << 10))
    }

    /// Whether the gathered operations should be written out as a run.
    var isFull: Bool { arena.count >= budget }

    /// Whether nothing is gathered.
    var isEmpty: Bool { slots.isEmpty }

    /// Gathers one operation (copied).
    mutating func append(_ kind: LogOperationKind, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let entry = arena.count
        arena.append(kind.rawValue)
        LEB128.append(UInt64(key.count), to: &arena)
        let keyStart = arena.count
        arena.append(contentsOf: key)
        LEB128.append(UInt64(value.count), to: &arena)
        arena.append(contentsOf: value)
        slots.append(Slot(entry: entry, key: keyStart, keyLength: key.count, end: arena.count))
    }

    /// Sorts the gathered operations by key, keeps the latest of each key,
    /// writes them to a new file at `path` and empties the writer.
    mutating func writeRun(to path: String) throws(SortedRunError) {
        arena.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            // Ties go to the earlier entry, so the last of a run of equal keys
            // is the latest operation (entries are appended in log order).
            slots.sort { a, b in
                let order = memcmp(base + a.key, base + b.key, min(a.keyLength, b.keyLength))
                if order != 0 { return order < 0 }
                if a.keyLength != b.keyLength { return a.keyLength < b.keyLength }
                return a.entry < b.entry
            }
        }
        let output = try RunFileOutput(path: path)
        do throws(SortedRunError) {
            try arena.withUnsafeBytesTyped { (bytes) throws(SortedRunError) in
                guard let base = bytes.baseAddress else { return }
                for index in slots.indices {
                    if index + 1 < slots.count, Self.sameKey(slots[index], slots[index + 1], base: base) { continue }
                    let slot = slots[index]
                    try output.write(UnsafeRawBufferPointer(rebasing: bytes[slot.entry..<slot.end]))
                }
            }
            try output.close()
        } catch {
            output.discard()
            throw error
        }
        arena.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
    }

    /// Whether two slots hold the same key. `base` is the arena's start.
    private static func sameKey(_ a: Slot, _ b: Slot, base: UnsafeRawPointer) -> Bool {
        a.keyLength == b.keyLength && memcmp(base + a.key, base + b.key, a.keyLength) == 0
    }
}

/// Buffered `write(2)` of a new run file.
private final class RunFileOutput {
    private let path: String
    private let file: FileDescriptor<SortedRunError>
    private var buffer: [UInt8] = []

    init(path: String) throws(SortedRunError) {
        self.path = path
        file = try FileDescriptor.open(path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SortedRunError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func close() throws(SortedRunError) {
        try flush()
        file.close()
    }

    /// Closes and deletes the unfinished file.
    func discard() {
        file.close()
        FileSystem<SystemCallError>.removeLeftover(path)
    }

    private func flush() throws(SortedRunError) {
        try buffer.withUnsafeBytesTyped { (bytes) throws(SortedRunError) in try file.writeAll(bytes) }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Reads a run file front to back, one entry at a time, through a 1 MiB
/// buffer (grown for an entry larger than that).
final class SortedRunReader {
    /// The run's position in log order: a later run's operation on a key
    /// replaces an earlier run's.
    let order: Int
    /// The current entry's kind, key and value (valid until ``advance()``).
    private(set) var kind: LogOperationKind = .set
    private(set) var key: [UInt8] = []
    private(set) var value: [UInt8] = []
    /// Whether the run is exhausted (no current entry).
    private(set) var isAtEnd = false

    private let path: String
    private let file: FileDescriptor<SortedRunError>
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var endOfFile = false

    /// Opens the run at `path` and reads its first entry.
    init(path: String, order: Int) throws(SortedRunError) {
        self.path = path
        self.order = order
        file = try FileDescriptor.open(path, flags: O_RDONLY)
        buffer = [UInt8](repeating: 0, count: 1 << 20)
        try advance()
    }

    deinit { file.close() }

    /// Moves to the next entry, or to the end.
    func advance() throws(SortedRunError) {
        guard try ensure(1) else {
            isAtEnd = true
            return
        }
        guard let kind = LogOperationKind(rawValue: buffer[start]) else { throw damaged("an unknown operation kind") }
        // `ensure` may move the unread bytes to the buffer's start, so
        // positions are kept relative to `start` across its calls.
        try ensure(1 + 2 * LEB128.maximumSize, orEnd: true)
        let keyLength = try varint(at: 1)
        let key = keyLength.end
        try ensure(key + keyLength.value + LEB128.maximumSize, orEnd: true)
        let valueLength = try varint(at: key + keyLength.value)
        let value = valueLength.end
        let total = value + valueLength.value
        guard try ensure(total) else { throw damaged("a truncated entry") }
        self.kind = kind
        self.key.removeAll(keepingCapacity: true)
        self.key.append(contentsOf: buffer[start + key..<start + key + keyLength.value])
        self.value.removeAll(keepingCapacity: true)
        self.value.append(contentsOf: buffer[start + value..<start + value + valueLength.value])
        start += total
    }

    /// The varint `offset` bytes after `start`, and the offset after it.
    private func varint(at offset: Int) throws(SortedRunError) -> (value: Int, end: Int) {
        let index = start + offset
        guard index <= end else { throw damaged("a truncated entry") }
        var consumed = 0
        let value: UInt64
        do throws(LEB128.ReadFailure) {
            value = try buffer.withUnsafeBytesTyped { (bytes) throws(LEB128.ReadFailure) in
                try LEB128.read(UnsafeRawBufferPointer(rebasing: bytes[index..<end]), at: &consumed)
            }
        } catch {
            throw damaged("a bad length")
        }
        guard value <= UInt64(WhyCacheLimits.maximumValueLength) else { throw damaged("an impossible length") }
        return (Int(value), offset + consumed)
    }

    /// Makes `count` bytes available from `start`, reading more; returns
    /// false when the file ends first (then `orEnd` decides whether fewer
    /// bytes are acceptable, as at the last entry).
    @discardableResult
    private func ensure(_ count: Int, orEnd: Bool = false) throws(SortedRunError) -> Bool {
        while end - start < count && !endOfFile {
            if start > 0 {
                buffer.withUnsafeMutableBytes { bytes in
                    guard let base = bytes.baseAddress else { return }
                    memmove(base, base + start, end - start)
                }
                end -= start
                start = 0
            }
            if buffer.count - end < count { buffer.append(contentsOf: repeatElement(0, count: count - (buffer.count - end))) }
            let read = try buffer.withUnsafeMutableBytesTyped { (bytes) throws(SortedRunError) in
                try file.readNext(into: UnsafeMutableRawBufferPointer(rebasing: bytes[end...]))
            }
            if read == 0 { endOfFile = true }
            end += read
        }
        return end - start >= count || (orEnd && end > start)
    }

    private func damaged(_ what: String) -> SortedRunError {
        .damaged(path: path, reason: "the sort run holds \(what)")
    }
}

/// Why a run file could not be written or read back.
enum SortedRunError: SystemCallFailure, CustomStringConvertible {
    /// A system call on the run file failed.
    case systemCall(SystemCallError)
    /// The run file does not hold what its writer wrote (`reason`).
    case damaged(path: String, reason: String)

    init(systemCall failure: SystemCallError) { self = .systemCall(failure) }

    /// The run file's path.
    var path: String {
        switch self {
        case .systemCall(let failure): failure.path
        case .damaged(let path, _): path
        }
    }

    var description: String {
        switch self {
        case .systemCall(let failure): "\(failure.call) failed: \(SystemCallError.describe(errno: failure.errno)) (errno \(failure.errno))"
        case .damaged(_, let reason): reason
        }
    }
}
