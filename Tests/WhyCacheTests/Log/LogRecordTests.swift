import Testing
@testable import WhyCache
import WhyCacheTestSupport

/// Round trips, exact sizes and input limits of the log record format.
@Suite struct LogRecordTests {
    private func roundTrip(_ operations: [LogOperation]) throws -> LogRecord {
        let bytes = try LogRecord(operations).encoded()
        return try LogRecord(decoding: bytes)
    }

    @Test func singleSetRoundTrips() throws {
        let record = LogRecord([.set(key: Array("user:1234567".utf8), value: Array("hello".utf8))])
        #expect(try roundTrip(record.operations) == record)
    }

    @Test func emptyValueRoundTrips() throws {
        let operations: [LogOperation] = [.set(key: [1], value: [])]
        #expect(try roundTrip(operations).operations == operations)
    }

    @Test func binaryKeysAndValuesRoundTrip() throws {
        let operations: [LogOperation] = [
            .set(key: [0x00], value: [0xFF, 0x00, 0xFF]),
            .set(key: [0xFF, 0xFF, 0x00, 0x00], value: [0x00]),
            .delete(key: [0x00, 0x00]),
            .delete(key: [0xFF]),
        ]
        #expect(try roundTrip(operations).operations == operations)
    }

    @Test func shortestAndLongestKeysRoundTrip() throws {
        let longest = [UInt8](repeating: 0xAB, count: WhyCacheLimits.maximumKeyLength)
        let operations: [LogOperation] = [
            .set(key: [7], value: [1, 2, 3]),
            .set(key: longest, value: Array(0..<200)),
            .delete(key: longest),
            .delete(key: [7]),
        ]
        #expect(try roundTrip(operations).operations == operations)
    }

    @Test func manyOperationsRoundTrip() throws {
        var generator = SeededGenerator(seed: 42)
        let operations = (0..<5_000).map { _ in LogOperation.random(using: &generator) }
        #expect(try roundTrip(operations).operations == operations)
    }

    @Test func singleKeySetCostsEightBytesOfOverhead() throws {
        let key = [UInt8](repeating: 0x41, count: 13)
        let value = [UInt8](repeating: 0x42, count: 100)
        let record = LogRecord([.set(key: key, value: value)])
        // version + count + header + value length + checksum
        #expect(try record.encoded().count == 13 + 100 + 8)
        #expect(try record.encodedSize() == 121)
        // A delete of the same key needs no value length.
        #expect(try LogRecord([.delete(key: key)]).encoded().count == 13 + 7)
    }

    @Test func encodingIsByteExact() throws {
        let bytes = try LogRecord([.set(key: Array("k".utf8), value: Array("v".utf8))]).encoded()
        // version 1, one operation, header 1<<2|0, value length 1, "k", "v", CRC-32C
        let body: [UInt8] = [0x01, 0x01, 0x04, 0x01, 0x6B, 0x76]
        let crc = CRC32C.checksum(body)
        let trailer = [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
        #expect(bytes == body + trailer)
    }

    @Test func documentedExampleMatches() throws {
        // The worked example of docs/FORMAT.md.
        let set = try LogRecord([.set(key: Array("color".utf8), value: Array("blue".utf8))]).encoded()
        #expect(set == [0x01, 0x01, 0x14, 0x04, 0x63, 0x6F, 0x6C, 0x6F, 0x72, 0x62, 0x6C, 0x75, 0x65, 0x98, 0x59, 0x69, 0xFF])
        let delete = try LogRecord([.delete(key: Array("color".utf8))]).encoded()
        #expect(delete == [0x01, 0x01, 0x15, 0x63, 0x6F, 0x6C, 0x6F, 0x72, 0x6B, 0x9A, 0x3B, 0xB0])
    }

    @Test func viewHandsOutBorrowedOperationsInOrder() throws {
        let operations: [LogOperation] = [
            .set(key: [1, 2], value: [3]),
            .delete(key: [4]),
            .set(key: [5], value: []),
        ]
        let bytes = try LogRecord(operations).encoded()
        var seen: [LogOperation] = []
        try bytes.withUnsafeBytes { raw in
            let view = try LogRecordView(validating: raw)
            #expect(view.operationCount == 3)
            view.forEachOperation { kind, key, value in
                switch kind {
                case .set: seen.append(.set(key: Array(key), value: Array(value)))
                case .delete:
                    #expect(value.isEmpty)
                    seen.append(.delete(key: Array(key)))
                }
            }
        }
        #expect(seen == operations)
    }

    @Test func emptyRecordIsRejected() {
        #expect(throws: LogRecordError.noOperations) { try LogRecord([]).encoded() }
    }

    @Test func emptyKeyIsRejected() {
        #expect(throws: LogRecordError.emptyKey(operationIndex: 1)) {
            try LogRecord([.delete(key: [1]), .set(key: [], value: [1])]).encoded()
        }
        #expect(throws: LogRecordError.emptyKey(operationIndex: 0)) { try LogRecord([.delete(key: [])]).encoded() }
    }

    @Test func overlongKeyIsRejected() {
        let key = [UInt8](repeating: 1, count: WhyCacheLimits.maximumKeyLength + 1)
        #expect(throws: LogRecordError.keyTooLong(operationIndex: 0, length: key.count)) {
            try LogRecord([.set(key: key, value: [])]).encoded()
        }
    }

    @Test func overlongValueIsRejected() {
        let value = [UInt8](repeating: 0, count: WhyCacheLimits.maximumValueLength + 1)
        #expect(throws: LogRecordError.valueTooLong(operationIndex: 0, length: value.count)) {
            try LogRecord([.set(key: [1], value: value)]).encoded()
        }
    }

    /// The replay announces each operation's key `ahead` operations before
    /// applying it, so that the state file can fetch its path meanwhile.
    @Test(arguments: [0, 1, 8, 30])
    func operationsAreAnnouncedAheadOnceEachAndInOrder(ahead: Int) throws {
        let count = 20
        let operations: [LogOperation] = (0..<count).map { index in
            index % 3 == 0 ? .delete(key: [UInt8(index)]) : .set(key: [UInt8(index)], value: [0xEE])
        }
        let bytes = try LogRecord(operations).encoded()
        var announced: [Int] = []
        var applied: [Int] = []
        try bytes.withUnsafeBytes { raw in
            let view = try LogRecordView(validating: raw)
            view.forEachOperation(announcingKeysAhead: ahead, { key in announced.append(Int(key[0])) }) { _, key, _ in
                let index = Int(key[0])
                // Every later operation within `ahead` places, and no other, was announced.
                let expected = ahead == 0 ? [] : Array((1..<count).prefix(min(index + ahead, count - 1)))
                #expect(announced == expected, "at operation \(index)")
                applied.append(index)
            }
        }
        #expect(applied == Array(0..<count))
        #expect(announced == (ahead == 0 ? [] : Array(1..<count)))
    }

    @Test func longestValueRoundTrips() throws {
        let value = [UInt8](repeating: 0x5A, count: WhyCacheLimits.maximumValueLength)
        let bytes = try LogRecord([.set(key: [1], value: value)]).encoded()
        // key, a four-byte value length, and version + count + header + checksum
        #expect(bytes.count == WhyCacheLimits.maximumValueLength + 1 + 4 + 7)
        try bytes.withUnsafeBytes { raw in
            let view = try LogRecordView(validating: raw)
            view.forEachOperation { _, key, decoded in
                #expect(Array(key) == [1])
                #expect(decoded.count == value.count)
            }
        }
    }
}

extension LogOperation {
    /// A random set or delete with a key of 1...40 bytes and a value of 0...300 bytes.
    static func random(using generator: inout SeededGenerator) -> LogOperation {
        let key = (0..<Int.random(in: 1...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if Bool.random(using: &generator) {
            return .delete(key: key)
        }
        let value = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return .set(key: key, value: value)
    }
}
