import Glibc
import Dispatch
import Synchronization
import WhyCache

/// Commands that use a ``FileDatastore`` from a separate process: concurrent
/// appenders, appenders killed on purpose, and a small benchmark.
///
/// Payloads written here follow one pattern that the tests check:
/// the text `"<tag> <index> <size>\n"` followed by `size` filler bytes, byte
/// `k` being `UInt8(truncatingIfNeeded: index + k)`.
enum DatastoreCommands {
    static let table: [String: HelperCommandBody] = [
        "datastore-append": append,
        "datastore-append-forever": appendForever,
        "datastore-bench": bench,
        "record-bench": recordBench,
    ]

    /// `datastore-append DIR TAG COUNT always|never`: appends COUNT payloads
    /// tagged TAG, one record per append, then prints `done TAG COUNT`.
    static func append(_ arguments: [String]) throws {
        let directory = try HelperCommand.string(arguments, 0, "directory")
        let tag = try HelperCommand.string(arguments, 1, "tag")
        let count: Int = try HelperCommand.integer(arguments, 2, "count")
        let policy = try syncPolicy(arguments, 3)
        try HelperCommand.waitFor {
            let store = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: policy, segmentSize: 64 << 10))
            try await store.createIfMissing()
            for index in 0..<count {
                _ = try await store.append(payload(tag: tag, index: index, size: Int.random(in: 0...2_000)))
            }
        }
        HelperCommand.say("done \(tag) \(count)")
    }

    /// `datastore-append-forever DIR TAG MAXSIZE`: appends batches of one to
    /// three payloads of up to MAXSIZE filler bytes until killed, printing
    /// `appended ID` after each batch with the last id it was given.
    static func appendForever(_ arguments: [String]) throws {
        let directory = try HelperCommand.string(arguments, 0, "directory")
        let tag = try HelperCommand.string(arguments, 1, "tag")
        let maximumSize: Int = try HelperCommand.integer(arguments, 2, "maximum size")
        try HelperCommand.waitFor {
            let store = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: 256 << 10))
            try await store.createIfMissing()
            var index = 0
            while true {
                let batch = (0..<Int.random(in: 1...3)).map { offset in
                    payload(tag: tag, index: index + offset, size: Int.random(in: 0...maximumSize))
                }
                index += batch.count
                let ids = try await store.append(contentsOf: batch)
                HelperCommand.say("appended \(ids.last ?? 0)")
            }
        }
    }

    /// `datastore-bench DIR COUNT SIZE always|never TASKS`: TASKS tasks append
    /// COUNT single records of SIZE bytes in total, then the log is read back;
    /// prints `appends_per_s`, `reads_per_s` and `read_mib_per_s`.
    static func bench(_ arguments: [String]) throws {
        let directory = try HelperCommand.string(arguments, 0, "directory")
        let count: Int = try HelperCommand.integer(arguments, 1, "count")
        let size: Int = try HelperCommand.integer(arguments, 2, "size")
        let policy = try syncPolicy(arguments, 3)
        let tasks: Int = try HelperCommand.integer(arguments, 4, "tasks")
        try HelperCommand.waitFor {
            let store = try FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: policy))
            try await store.createIfMissing()
            let record = [UInt8](repeating: 0x5A, count: size)
            let clock = ContinuousClock()
            let appendTime = try await clock.measure {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<tasks {
                        group.addTask {
                            for _ in stride(from: task, to: count, by: tasks) { _ = try await store.append(record) }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            var read = 0
            var bytes = 0
            let readTime = try await clock.measure {
                for try await entry in store.records(after: 0) {
                    read += 1
                    bytes += entry.payload.count
                }
            }
            HelperCommand.say("appends_per_s \(Int(Double(count) / seconds(appendTime)))")
            HelperCommand.say("reads_per_s \(Int(Double(read) / seconds(readTime)))")
            HelperCommand.say("read_mib_per_s \(Int(Double(bytes) / seconds(readTime) / 1_048_576))")
        }
    }

    /// `record-bench COUNT KEYS`: encodes COUNT records of KEYS sets each (keys of
    /// 13 bytes, values of 100 bytes), then decodes them with ``LogRecordView``;
    /// prints `encode_keys_per_s` and `decode_keys_per_s`.
    static func recordBench(_ arguments: [String]) throws {
        let count: Int = try HelperCommand.integer(arguments, 0, "count")
        let keys: Int = try HelperCommand.integer(arguments, 1, "keys per record")
        let clock = ContinuousClock()
        let value = [UInt8](repeating: 0x61, count: 100)
        var records: [[UInt8]] = []
        records.reserveCapacity(count)
        let encodeTime = try clock.measure {
            for index in 0..<count {
                let operations = (0..<keys).map { key in
                    LogOperation.set(key: Array("key:\(index):\(key)".utf8.prefix(13)), value: value)
                }
                records.append(try LogRecord(operations).encoded())
            }
        }
        var checksum = 0
        let decodeTime = try clock.measure {
            for record in records {
                try record.withUnsafeBytes { bytes in
                    let view = try LogRecordView(validating: bytes)
                    view.forEachOperation { _, key, value in checksum &+= key.count &+ value.count }
                }
            }
        }
        let total = Double(count * keys)
        HelperCommand.say("encode_keys_per_s \(Int(total / seconds(encodeTime)))")
        HelperCommand.say("decode_keys_per_s \(Int(total / seconds(decodeTime)))")
        HelperCommand.say("checksum \(checksum)")
    }

    /// The payload number `index` of `tag`, with `size` filler bytes.
    static func payload(tag: String, index: Int, size: Int) -> [UInt8] {
        Array("\(tag) \(index) \(size)\n".utf8) + (0..<size).map { UInt8(truncatingIfNeeded: index &+ $0) }
    }

    private static func syncPolicy(_ arguments: [String], _ index: Int) throws -> FileDatastoreOptions.SyncPolicy {
        switch try HelperCommand.string(arguments, index, "sync policy") {
        case "always": return .always
        case "never": return .never
        case let other: throw HelperCommand.UsageError(description: "sync policy must be always or never, not \(other)")
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (whole, fraction) = duration.components
        return max(Double(whole) + Double(fraction) / 1e18, 1e-9)
    }

}
