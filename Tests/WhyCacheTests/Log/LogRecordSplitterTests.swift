import Testing
@testable import WhyCache
import WhyCacheTestSupport

/// The splitter keeps order, respects the size limit and is all or nothing.
@Suite struct LogRecordSplitterTests {
    private func decodeAll(_ records: [[UInt8]]) throws -> [LogOperation] {
        try records.flatMap { try LogRecord(decoding: $0).operations }
    }

    @Test func smallBatchesBecomeOneRecord() throws {
        let operations: [LogOperation] = [.set(key: [1], value: [2]), .delete(key: [3])]
        let records = try LogRecordSplitter().split(operations)
        #expect(records.count == 1)
        #expect(try decodeAll(records) == operations)
    }

    @Test func emptyInputYieldsNoRecords() throws {
        #expect(try LogRecordSplitter().split([]).isEmpty)
    }

    @Test func recordsRespectTheLimitAndKeepOrder() throws {
        var generator = SeededGenerator(seed: 3)
        let operations = (0..<3_000).map { _ in LogOperation.random(using: &generator) }
        for limit in [400, 1_000, 4_096, 65_536] {
            let splitter = try LogRecordSplitter(maximumRecordSize: limit)
            let records = try splitter.split(operations)
            #expect(records.allSatisfy { $0.count <= limit })
            #expect(try decodeAll(records) == operations)
            // Greedy packing: no record could have taken the next record's first operation.
            for (record, next) in zip(records, records.dropFirst()) {
                let merged = try LogRecord(LogRecord(decoding: record).operations + [LogRecord(decoding: next).operations[0]])
                #expect(try merged.encodedSize() > limit)
            }
        }
    }

    @Test func anOperationExactlyAtTheLimitFits() throws {
        let operation = LogOperation.set(key: [1], value: [UInt8](repeating: 9, count: 100))
        let size = try LogRecord([operation]).encodedSize()
        let records = try LogRecordSplitter(maximumRecordSize: size).split([operation, operation])
        #expect(records.map(\.count) == [size, size])
    }

    @Test func oversizedOperationFailsBeforeAnythingIsProduced() throws {
        let splitter = try LogRecordSplitter(maximumRecordSize: 1_000)
        let operations: [LogOperation] = [
            .set(key: [1], value: [1]),
            .set(key: [2], value: [UInt8](repeating: 0, count: 2_000)),
            .set(key: [3], value: [3]),
        ]
        #expect(throws: LogRecordError.operationTooLarge(operationIndex: 1, recordSize: 2_000 + 1 + 8 + 1, maximumRecordSize: 1_000)) {
            try splitter.split(operations)
        }
    }

    @Test func invalidKeysFailTheWholeBatch() throws {
        let splitter = try LogRecordSplitter()
        #expect(throws: LogRecordError.emptyKey(operationIndex: 2)) {
            try splitter.split([.delete(key: [1]), .delete(key: [2]), .delete(key: [])])
        }
        let long = [UInt8](repeating: 1, count: WhyCacheLimits.maximumKeyLength + 1)
        #expect(throws: LogRecordError.keyTooLong(operationIndex: 0, length: long.count)) {
            try splitter.split([.set(key: long, value: [])])
        }
    }

    @Test func packingNeverSplitsAWriteThatFitsInOneRecord() throws {
        var generator = SeededGenerator(seed: 11)
        for limit in [400, 1_000, 4_096] {
            let splitter = try LogRecordSplitter(maximumRecordSize: limit)
            let writes = try (0..<300).map { _ in
                let operations = (0..<Int.random(in: 1...8, using: &generator)).map { _ in LogOperation.random(using: &generator) }
                return try #require(try splitter.validate(operations))
            }
            let packing = splitter.pack(writes)
            #expect(packing.records.allSatisfy { $0.count <= limit })
            #expect(packing.lastRecordIndices.count == writes.count)
            #expect(try decodeAll(packing.records) == writes.flatMap(\.operations))

            // Where each write lies: the records from the one holding its first
            // operation to the one holding its last.
            let recordOperations = try packing.records.map { try LogRecord(decoding: $0).operations }
            var firstRecords: [Int] = []
            var position = (record: 0, operation: 0)
            for write in writes {
                var first: Int?
                for _ in write.operations {
                    while position.operation == recordOperations[position.record].count { position = (position.record + 1, 0) }
                    first = first ?? position.record
                    position.operation += 1
                }
                firstRecords.append(try #require(first))
                #expect(position.record == packing.lastRecordIndices[firstRecords.count - 1])
            }
            for (index, write) in writes.enumerated() {
                let fitsAlone = try LogRecord(write.operations).encodedSize() <= limit
                if fitsAlone {
                    #expect(firstRecords[index] == packing.lastRecordIndices[index], "a write that fits in one record was split")
                }
                // A write that starts a record and fits in one did not fit in
                // what was left of the record before.
                if fitsAlone, index > 0, firstRecords[index] > packing.lastRecordIndices[index - 1] {
                    let previous = recordOperations[firstRecords[index] - 1]
                    #expect(try LogRecord(previous + write.operations).encodedSize() > limit)
                }
            }
        }
    }

    @Test func aWriteLargerThanARecordFillsRecordsAsSplitDoes() throws {
        let splitter = try LogRecordSplitter(maximumRecordSize: 1_000)
        let small = try #require(try splitter.validate([.set(key: [1], value: [UInt8](repeating: 1, count: 100))]))
        let largeOperations = (0..<30).map { LogOperation.set(key: [2, UInt8($0)], value: [UInt8](repeating: 2, count: 100)) }
        let large = try #require(try splitter.validate(largeOperations))
        #expect(splitter.pack([large]).records == (try splitter.split(largeOperations)))

        // Around other writes, the large one fills the record it starts in and
        // the one it ends in is shared with the write after it.
        let packing = splitter.pack([small, large, small])
        #expect(try decodeAll(packing.records) == small.operations + largeOperations + small.operations)
        #expect(packing.lastRecordIndices.first == 0)
        #expect(packing.lastRecordIndices.last == packing.lastRecordIndices[1])
        #expect(packing.records.count == (try splitter.split(small.operations + largeOperations + small.operations)).count)
    }

    @Test func validatingNothingGivesNoWrite() throws {
        #expect(try LogRecordSplitter().validate([]) == nil)
    }

    @Test func invalidLimitsAreRejected() {
        #expect(throws: LogRecordError.invalidMaximumRecordSize(7)) { try LogRecordSplitter(maximumRecordSize: 7) }
        #expect(throws: LogRecordError.invalidMaximumRecordSize(WhyCacheLimits.maximumRecordSize + 1)) {
            try LogRecordSplitter(maximumRecordSize: WhyCacheLimits.maximumRecordSize + 1)
        }
    }
}
