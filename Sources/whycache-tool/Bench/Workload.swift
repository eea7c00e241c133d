import Glibc
import Foundation
import WhyCache

/// Workload W, identical to the LMDB anchor benchmark's (shared/anchors/common.h):
/// keys `user:%08d` (13 bytes) for i in 0..<N inserted in a Fisher-Yates
/// permutation (seed 42); values of 100 pseudo-random bytes derived from
/// (i, version); lookups of uniformly random existing keys.
enum Workload {
    static let keyLength = 13
    static let valueLength = 100
    /// How many keys have names: `user:%08d` has eight digits.
    static let keyNames = 100_000_000

    /// SplitMix64 step, as in the anchor.
    @inline(__always)
    static func splitmix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (multiply-shift), as in the anchor.
    @inline(__always)
    static func random(below n: UInt32, _ state: inout UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: ((splitmix64(&state) >> 32) &* UInt64(n)) >> 32)
    }

    /// Writes key `i` ("user:%08d") into `key` (13 bytes).
    @inline(__always)
    static func makeKey(_ key: UnsafeMutableRawPointer, _ i: UInt32) {
        let prefix: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0x75, 0x73, 0x65, 0x72, 0x3A)
        key.storeBytes(of: prefix.0, toByteOffset: 0, as: UInt8.self)
        key.storeBytes(of: prefix.1, toByteOffset: 1, as: UInt8.self)
        key.storeBytes(of: prefix.2, toByteOffset: 2, as: UInt8.self)
        key.storeBytes(of: prefix.3, toByteOffset: 3, as: UInt8.self)
        key.storeBytes(of: prefix.4, toByteOffset: 4, as: UInt8.self)
        var rest = i
        for digit in stride(from: 12, through: 5, by: -1) {
            key.storeBytes(of: UInt8(0x30 + rest % 10), toByteOffset: digit, as: UInt8.self)
            rest /= 10
        }
    }

    /// Writes the 100-byte value of key `i` at `version` into `value`.
    @inline(__always)
    static func makeValue(_ value: UnsafeMutableRawPointer, _ i: UInt32, version: UInt32) {
        var state = (UInt64(version) << 32 | UInt64(i)) ^ 0x5_DEEC_E66D
        for word in 0..<12 {
            value.storeBytes(of: splitmix64(&state), toByteOffset: 8 * word, as: UInt64.self)
        }
        value.storeBytes(of: UInt32(truncatingIfNeeded: splitmix64(&state)), toByteOffset: 96, as: UInt32.self)
    }

    /// Key `i` and its value at `version`, as arrays (for `SharedCache.set`).
    static func item(_ i: UInt32, version: UInt32) -> (key: [UInt8], value: [UInt8]) {
        var key = [UInt8](repeating: 0, count: keyLength)
        var value = [UInt8](repeating: 0, count: valueLength)
        key.withUnsafeMutableBytes { bytes in
            if let base = bytes.baseAddress { makeKey(base, i) }
        }
        value.withUnsafeMutableBytes { bytes in
            if let base = bytes.baseAddress { makeValue(base, i, version: version) }
        }
        return (key, value)
    }

    /// Sets the items `order` (keys of `shape`, values of `version`) in
    /// `file`, committing every `batch` items (0: all in one transaction),
    /// and announcing each key `lookahead` items ahead
    /// (`WriteTransaction.prefetchPath(forKeyBytes:)`; 0: none). The last
    /// transaction also sets the update id to `updateID`, when given.
    static func write(
        _ order: [UInt32], shape: KeyShape, version: UInt32, into file: SharedStateFile,
        batch: Int, lookahead: Int = 0, updateID: UInt64? = nil
    ) throws {
        let buffers = WorkloadBuffers()
        defer { buffers.deallocate() }
        let (key, value) = (buffers.key, buffers.value)
        guard let keyBase = key.baseAddress, let valueBase = value.baseAddress else { return }
        var transaction = try file.beginWrite()
        for (index, i) in order.enumerated() {
            if lookahead > 0 && index + lookahead < order.count {
                let length = shape.makeKey(keyBase, order[index + lookahead])
                transaction.prefetchPath(forKeyBytes: UnsafeRawBufferPointer(start: keyBase, count: length))
            }
            let keyLength = shape.makeKey(keyBase, i)
            makeValue(valueBase, i, version: version)
            try transaction.setValue(
                bytes: UnsafeRawBufferPointer(start: valueBase, count: valueLength),
                forKeyBytes: UnsafeRawBufferPointer(start: keyBase, count: keyLength))
            if batch > 0 && (index + 1) % batch == 0 && index + 1 < order.count {
                try transaction.commit()
                transaction = try file.beginWrite()
            }
        }
        if let updateID { try transaction.setUpdateID(updateID) }
        try transaction.commit()
    }

    /// The insertion order: a Fisher-Yates permutation of 0..<n with seed 42.
    static func permutation(_ n: UInt32) -> [UInt32] {
        var order = (0..<n).map { $0 }
        var state: UInt64 = 42
        var i = n - 1
        while i > 0 {
            let j = random(below: i + 1, &state)
            order.swapAt(Int(i), Int(j))
            i -= 1
        }
        return order
    }
}

/// Where benchmarks and the demo put their files unless told otherwise:
/// `/dev/shm` (memory, as a shared-state file should live) when present,
/// else the temporary folder.
/// A key buffer and a value buffer for the items of workload W (or of
/// another ``KeyShape``), allocated
/// once for a benchmark loop that must not allocate per item. Freed by
/// ``deallocate()``, which the owner calls in a `defer`.
struct WorkloadBuffers {
    /// Room for one key of any shape (``KeyShape/maximumLength`` bytes).
    let key: UnsafeMutableRawBufferPointer
    /// Room for one value, or for a value read back.
    let value: UnsafeMutableRawBufferPointer

    /// Buffers whose value buffer holds `valueCapacity` bytes.
    init(valueCapacity: Int = Workload.valueLength) {
        key = UnsafeMutableRawBufferPointer.allocate(byteCount: KeyShape.maximumLength, alignment: 8)
        value = UnsafeMutableRawBufferPointer.allocate(byteCount: valueCapacity, alignment: 8)
    }

    /// Frees both buffers; nothing may use them afterwards.
    func deallocate() {
        key.deallocate()
        value.deallocate()
    }
}

func scratchFolder() -> String {
    FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
}

/// Runs `body` in a new folder `whycache-bench-<name>-<pid>` inside
/// `directory` (default: ``scratchFolder()``), removed afterwards, also when
/// `body` throws. The folders of this benchmark that killed processes left
/// (their logs and state files, in memory when the folder is /dev/shm) are
/// removed first.
func withBenchFolder(_ name: String, in directory: String?, _ body: (String) async throws -> Void) async throws {
    let parent = directory ?? scratchFolder()
    for abandoned in AbandonedFiles.paths(in: parent, prefix: "whycache-bench-\(name)-") {
        try? FileManager.default.removeItem(atPath: abandoned)
    }
    let folder = parent + "/whycache-bench-\(name)-\(getpid())"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try await body(folder)
}

/// Monotonic wall-clock seconds.
func monotonicSeconds() -> Double {
    Double(Clocks.monotonicNanoseconds()) * 1e-9
}

/// CPU seconds (user + system) used by this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
}

/// Keeps a value alive so the optimizer cannot delete the work that made it.
@_optimize(none)
func blackHole(_ value: UInt64) {}
