import Testing
@testable import WhyCache
import WhyCacheTestSupport

/// Damaged, truncated and foreign bytes are always a typed error, never a crash
/// and never a silently different record.
@Suite struct LogRecordCorruptionTests {
    private static let sample: [UInt8] = {
        let operations: [LogOperation] = [
            .set(key: Array("alpha".utf8), value: Array(repeating: 0x11, count: 130)),
            .delete(key: [0x00, 0xFF]),
            .set(key: [0xFF], value: []),
        ]
        return (try? LogRecord(operations).encoded()) ?? []
    }()

    private func decode(_ bytes: [UInt8]) -> Result<LogRecord, LogRecordError> {
        Result { () throws(LogRecordError) in try LogRecord(decoding: bytes) }
    }

    @Test func everyTruncationIsATypedError() {
        let bytes = Self.sample
        #expect(!bytes.isEmpty)
        for length in 0..<bytes.count {
            let result = decode(Array(bytes[..<length]))
            guard case .failure = result else {
                Issue.record("a record truncated to \(length) bytes decoded")
                continue
            }
        }
    }

    @Test func everySingleBitFlipIsATypedError() {
        let bytes = Self.sample
        for index in bytes.indices {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[index] ^= 1 << bit
                if case .success = decode(damaged) {
                    Issue.record("flipping bit \(bit) of byte \(index) went unnoticed")
                }
            }
        }
    }

    @Test func randomDamageNeverCrashes() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2_000 {
            var damaged = Self.sample
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                damaged[Int.random(in: damaged.indices, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if case .success(let record) = decode(damaged) {
                // Only possible if the damage rewrote the bytes to the original.
                #expect(damaged == Self.sample, "damaged bytes decoded to \(record)")
            }
        }
    }

    @Test func randomBytesWithValidChecksumNeverCrash() throws {
        // Structure errors behind a matching checksum: random bodies, sealed.
        var generator = SeededGenerator(seed: 99)
        for _ in 0..<5_000 {
            var body: [UInt8] = [LogRecordFormat.version]
            for _ in 0..<Int.random(in: 0...40, using: &generator) { body.append(UInt8.random(in: 0...255, using: &generator)) }
            let crc = CRC32C.checksum(body)
            let sealed = body + withUnsafeBytes(of: crc.littleEndian) { Array($0) }
            if case .success(let record) = decode(sealed) {
                // Whatever decodes must re-encode to exactly the same bytes.
                #expect(try record.encoded() == sealed)
            }
        }
    }

    @Test func unknownVersionIsRejected() {
        var bytes = Self.sample
        bytes[0] = 2
        #expect(throws: LogRecordError.unsupportedVersion(2)) { try LogRecord(decoding: bytes) }
        #expect(throws: LogRecordError.unsupportedVersion(0)) { try LogRecord(decoding: [0, 1, 2, 3, 4, 5, 6, 7, 8]) }
    }

    @Test func emptyInputIsTruncated() {
        #expect(throws: LogRecordError.truncated(length: 0)) { try LogRecord(decoding: []) }
        #expect(throws: LogRecordError.truncated(length: 3)) { try LogRecord(decoding: [1, 1, 4]) }
    }

    @Test func checksumMismatchIsReported() {
        var bytes = Self.sample
        bytes[10] ^= 0x40
        #expect {
            try LogRecord(decoding: bytes)
        } throws: { error in
            guard case LogRecordError.checksumMismatch = error else { return false }
            return true
        }
    }

    @Test func structuralErrorsBehindAValidChecksumAreMalformed() {
        func sealed(_ body: [UInt8]) -> [UInt8] {
            body + withUnsafeBytes(of: CRC32C.checksum(body).littleEndian) { Array($0) }
        }
        let cases: [(String, [UInt8])] = [
            ("zero operations", [1, 0, 4, 0]),
            ("unknown kind", [1, 1, 0x06, 0x41]),
            ("zero-length key", [1, 1, 0x00, 0x00]),
            ("key runs past the end", [1, 1, 0x0C, 0x00, 0x41]),
            ("trailing bytes", [1, 1, 0x05, 0x41, 0x00]),
            ("overlong varint", [1, 0x81, 0x00, 0x05, 0x41]),
            ("count larger than the bytes", [1, 0x7F, 0x05, 0x41]),
        ]
        for (name, body) in cases {
            let result = decode(sealed(body))
            guard case .failure(.malformed) = result else {
                Issue.record("\(name): expected .malformed, got \(result)")
                continue
            }
        }
    }

    @Test func errorsDescribeThemselves() {
        let errors: [LogRecordError] = [
            .emptyKey(operationIndex: 0), .keyTooLong(operationIndex: 1, length: 2000),
            .valueTooLong(operationIndex: 2, length: 1 << 27), .noOperations,
            .operationTooLarge(operationIndex: 3, recordSize: 2 << 20, maximumRecordSize: 1 << 20),
            .invalidMaximumRecordSize(1), .truncated(length: 2), .unsupportedVersion(9),
            .checksumMismatch(stored: 1, computed: 2), .malformed(offset: 4, reason: "bad"),
        ]
        for error in errors {
            #expect(!error.description.isEmpty)
        }
    }
}
