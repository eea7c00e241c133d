import WhyCache

/// What an append of some payloads writes to the log table: the rows of its
/// records, and the keys whose older single-key records it deletes
/// (docs/FORMAT.md §4.5). Both ways of appending — statements in a
/// transaction (``MySQLLogTable/append(_:on:)``) and one request
/// (``MySQLAppendRequest``) — write what a plan says.
///
/// Ids are not known when the plan is made: the counter row hands them out
/// under its lock. A row names its record by its distance from the append's
/// last id (``Row/back``: 0 for the last record, `count - 1` for the first).
///
/// **Invariant.** A single-key record that a later record of the same
/// append replaces (same key) has no rows: it would be deleted in the same
/// transaction that inserts it, so it is never inserted, and its id is a
/// hole like any record compaction removed. The last record of the append
/// always has rows, so the log's newest id always names a record.
struct MySQLAppendPlan {
    /// The key of a single-key record, with its stored hash.
    struct SingleKey {
        /// The 64-bit FNV-1a hash of ``key`` (`single_key_hash`).
        var hash: UInt64
        /// The key (`single_key`).
        var key: [UInt8]
    }

    /// One row of the log table.
    struct Row {
        /// The record's distance from the append's last id.
        var back: UInt64
        /// 0 for the head row, 1, 2, … for further parts.
        var part: UInt64
        /// Head: the whole payload's length; parts: 0.
        var payloadSize: UInt64
        /// Head: the whole payload's CRC-32C; parts: 0.
        var checksum: UInt64
        /// Head of a single-key record: its key; otherwise `nil`.
        var singleKey: SingleKey?
        /// This part of the payload.
        var bytes: ArraySlice<UInt8>
    }

    /// One record of the append.
    struct Record {
        /// Its key, when it is a single-key record and compaction is on.
        var singleKey: SingleKey?
        /// Whether it has rows: `false` for a single-key record that a
        /// later record of the same append replaces.
        var isInserted: Bool
    }

    /// The number of records (and ids) of the append.
    let count: UInt64

    /// The records, in id order.
    let records: [Record]

    /// The rows to insert, in id and part order.
    let rows: [Row]

    /// The distinct keys of the append's single-key records: every older
    /// single-key record of one of them is deleted by the append.
    let replacedKeys: [SingleKey]

    /// The payload bytes of the rows.
    let payloadBytes: Int

    /// Plans the append of `payloads` (at least one), compacting single-key
    /// records when `compacting`.
    init(payloads: [[UInt8]], compacting: Bool) {
        count = UInt64(payloads.count)
        let singleKeys = payloads.map { payload in
            compacting ? MySQLAppendPlan.singleKey(of: payload).map { SingleKey(hash: StableHash.fnv1a($0), key: $0) } : nil
        }
        // The index of the newest record of each single key.
        var newest: [[UInt8]: Int] = [:]
        for (index, single) in singleKeys.enumerated() {
            if let single { newest[single.key] = index }
        }
        var rows: [Row] = []
        var replacedKeys: [SingleKey] = []
        var payloadBytes = 0
        var records: [Record] = []
        for (index, payload) in payloads.enumerated() {
            let single = singleKeys[index]
            let isInserted = single.map { newest[$0.key] == index } ?? true
            records.append(Record(singleKey: single, isInserted: isInserted))
            guard isInserted else { continue }
            if let single { replacedKeys.append(single) }
            let back = count - 1 - UInt64(index)
            for (part, bytes) in PayloadRows.parts(of: payload).enumerated() {
                let head = part == 0
                rows.append(Row(
                    back: back, part: UInt64(part), payloadSize: head ? UInt64(payload.count) : 0,
                    checksum: head ? PayloadRows.checksum(of: payload) : 0, singleKey: head ? single : nil, bytes: bytes))
                payloadBytes += bytes.count
            }
        }
        self.rows = rows
        self.records = records
        self.replacedKeys = replacedKeys
        self.payloadBytes = payloadBytes
    }

    /// The key of `payload` when it is a valid log record with exactly one
    /// operation; otherwise `nil` (the datastore stores payloads it cannot
    /// decode unchanged, and never compacts them).
    static func singleKey(of payload: [UInt8]) -> [UInt8]? {
        payload.withUnsafeBytes { bytes -> [UInt8]? in
            guard let record = try? LogRecordView(validating: bytes), record.operationCount == 1 else { return nil }
            var key: [UInt8]?
            record.forEachOperation { _, operationKey, _ in key = Array(operationKey) }
            return key
        }
    }
}
