import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool bench bootstrap`: how long a new machine takes to join,
/// from a gzip snapshot of an old machine's state and the log.
///
/// An old machine's state of N keys of workload W is built through the
/// library's write path, untimed: `SharedCache.set(contentsOf:)` in chunks
/// of ``chunkKeys`` keys, which packs them into records of up to 1 MiB,
/// appends them to a fresh log and applies them, so that the state is the
/// log's. (A history rewrite into a checkpoint would change no timed step:
/// the new machine starts from the snapshot and reads only the records after
/// it.) Then, timed one by one:
///
/// 1. `snapshot --gzip`: the old machine's state file opened, a view pinned
///    and written as a gzip snapshot file, exactly as the `snapshot` command
///    does (``SnapshotFiles/write(_:with:to:progress:)``);
/// 2. (untimed) R single-key records appended to the log — the writes made
///    while the snapshot travelled to the new host (``CatchUpWrites``);
/// 3. `restore` of that file into a new state file, as the `restore` command
///    does (``SnapshotFiles/restore(from:at:with:progress:)``), and the
///    catch-up: a `SharedCache` opened on the restored file and `update()`.
///
/// Then the new machine's state is compared with the old one's plus the R
/// records, entry by entry (``BootstrapCheck``); a difference fails the
/// command (exit status 3) before any number is printed.
///
/// The log: without `--store`, a file datastore in the benchmark's folder;
/// with `--store`, a fresh log in that datastore (``BenchLogs``), for
/// MySQL the tables `<table>_bootstrap`, which stay on the server. Every file
/// the benchmark creates is in its folder `whycache-bench-bootstrap-<pid>`
/// (or, for `--store file:///DIR`, the log folder in DIR), removed at the
/// end, also after an error; folders that killed runs left are removed at
/// the next start.
struct BenchBootstrapCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Bootstrap a new machine from a gzip snapshot of a state of N keys plus the log records written after it; time the snapshot, the restore and the catch-up.",
        discussion: """
            The log is a file datastore in the benchmark's folder, or a fresh log in the datastore of --store \
            (a MySQL run leaves its tables <table>_bootstrap on the server). The new machine's state is checked \
            against the old one's plus the catch-up records; a difference is an error (exit status 3).
            """)

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "Keys N of the old machine's state (workload W: 13-byte keys, 100-byte values).")
    var keys = 1_000_000

    @Option(name: .long, help: "Single-key records R written to the log after the snapshot, for the new machine to catch up (half overwrite old keys, half add new ones).")
    var catchUpRecords = 10_000

    @Option(name: .long, help: "Folder for the state files, the snapshot and the default log (default: /dev/shm when present, else the temporary folder).")
    var directory: String?

    /// Keys per `set(contentsOf:)` call of the build: about a dozen 1 MiB
    /// records, few enough to keep the arrays small.
    static let chunkKeys = 100_000

    /// The suffix of the fresh log in the datastore of `--store`.
    private static let logSuffix = "bootstrap"

    /// Rejects counts below 1 and more keys than workload W has names for.
    func validate() throws {
        try requireAtLeastOne(["keys": keys, "catch-up-records": catchUpRecords])
        guard keys + catchUpRecords <= Workload.keyNames else {
            throw ValidationError("--keys plus --catch-up-records must be at most \(Workload.keyNames) (the names user:%08d)")
        }
    }

    func execute() async throws {
        try await BenchProgress.run("bench bootstrap") {
            try await withBenchFolder("bootstrap", in: directory) { try await measure(in: $0) }
        }
    }

    private func measure(in folder: String) async throws {
        let store: StoreURL
        if storeOptions.store == nil {
            store = .file(directory: folder)
        } else {
            store = try storeOptions.requireStore()
        }
        if case .mysql(let address) = store {
            let base = try address.configuration(password: try storeOptions.password(), defaultTable: "bench_\(getpid())")
            BenchMySQLCommand.reportTables(base, suffixes: [Self.logSuffix], command: "bench bootstrap")
        }
        try await BenchLogs.withFreshLog(store, options: storeOptions, suffix: Self.logSuffix) { datastore, name in
            try await run(on: datastore, named: name, folder: folder)
        }
    }

    /// The old machine, the snapshot, the catch-up records, the new machine
    /// and the check, on `datastore` (`name` says which in the notes).
    private func run(on datastore: any Datastore, named name: String, folder: String) async throws {
        let oldPath = "\(folder)/old-machine.state"
        let newPath = "\(folder)/new-machine.state"
        let snapshotPath = "\(folder)/snapshot.gz"

        // The old machine, untimed.
        let buildStart = monotonicSeconds()
        let old = try SharedCache(statePath: oldPath, datastore: datastore)
        defer { old.close() }
        try await build(old)
        let buildSeconds = monotonicSeconds() - buildStart
        let buildRecords = try await datastore.latestUpdateID()

        // 1. The snapshot, as `snapshot --gzip --out PATH` takes it.
        let snapshotStart = monotonicSeconds()
        let view = try StoreOptions.openStateFile(at: oldPath).snapshot()
        let writer = SnapshotWriter(compression: .gzip(level: SnapshotFiles.defaultGzipLevel))
        let written: SnapshotSummary
        do {
            written = try SnapshotFiles.write(view, with: writer, to: snapshotPath)
            view.close()
        } catch {
            view.close()
            throw error
        }
        let snapshotSeconds = monotonicSeconds() - snapshotStart

        // 2. The writes made while the snapshot travelled, untimed.
        let catchUp = CatchUpWrites(oldKeys: keys, records: catchUpRecords)
        _ = try await BenchUpdateCommand.fill(datastore, order: catchUp.order, keysPerRecord: 1, version: CatchUpWrites.version)
        let latest = try await datastore.latestUpdateID()

        // 3. The new machine: `restore`, then the update that catches up.
        let restoreStart = monotonicSeconds()
        let restored = try SnapshotFiles.restore(from: snapshotPath, at: newPath, with: SnapshotRestorer())
        let restoreSeconds = monotonicSeconds() - restoreStart
        let catchUpStart = monotonicSeconds()
        let new = try SharedCache(statePath: newPath, datastore: datastore)
        defer { new.close() }
        let update = try await new.update()
        let catchUpSeconds = monotonicSeconds() - catchUpStart

        // The check, untimed: nothing is printed for a wrong state.
        guard update.updateID == latest else {
            throw BootstrapCheck.Failure("the new machine reached update \(update.updateID), the log ends at \(latest)")
        }
        let checked = try BootstrapCheck(snapshotUpdateID: written.header.updateID).compare(old: old, plus: catchUp, new: new)

        let snapshotID = written.header.updateID
        Measurement(
            metric: "bootstrap_snapshot_bytes", value: Double(written.transferredBytes), unit: "bytes", keys: keys,
            note: "gzip level \(SnapshotFiles.defaultGzipLevel) snapshot at update \(snapshotID): \(written.streamBytes) stream bytes → "
                + "\(written.transferredBytes) bytes (" + String(format: "%.1f", Double(written.transferredBytes) * 100 / Double(max(1, written.streamBytes)))
                + "%), \(String(format: "%.1f", Double(written.transferredBytes) / Double(keys))) bytes per key"
        ).emit()
        Measurement(
            metric: "bootstrap_snapshot_seconds", value: snapshotSeconds, unit: "s", keys: keys,
            note: "snapshot --gzip of the old machine's state (open the file, pin a view, write, fsync and rename the file in \(folder)); "
                + "the old machine's state came from \(buildRecords) records of up to 1 MiB (set(contentsOf:) of \(Self.chunkKeys) keys at a time) "
                + "through \(name), built and applied in " + String(format: "%.1f", buildSeconds) + " s, untimed"
        ).emit()
        Measurement(
            metric: "bootstrap_restore_seconds", value: restoreSeconds, unit: "s", keys: keys,
            note: "restore of the gzip snapshot (\(restored.header.keyCount) keys at update \(restored.header.updateID)) into a new state file: "
                + "read, check, build, install"
        ).emit()
        Measurement(
            metric: "bootstrap_catch_up_seconds", value: catchUpSeconds, unit: "s", keys: keys,
            note: "SharedCache opened on the restored file and update(): \(update.recordsApplied) single-key records written after the snapshot "
                + "(\(catchUp.overwrites) overwrite old keys, \(catchUp.newKeys) add new ones) from \(name), in \(update.transactionsCommitted) transaction(s)"
        ).emit()
        Measurement(
            metric: "bootstrap_total_seconds", value: restoreSeconds + catchUpSeconds, unit: "s", keys: keys,
            note: "restore + catch-up; checked: the new machine's \(checked) keys at update \(update.updateID) are the old machine's "
                + "\(keys) at update \(snapshotID) plus the \(catchUpRecords) catch-up records, entry by entry"
        ).emit()
    }

    /// Sets workload W's N keys on `cache` in workload order, at version 0.
    private func build(_ cache: SharedCache) async throws {
        let order = Workload.permutation(UInt32(keys))
        var start = 0
        while start < order.count {
            let end = min(order.count, start + Self.chunkKeys)
            try await cache.set(contentsOf: order[start..<end].map { Workload.item($0, version: 0) })
            start = end
        }
        let count = try cache.statistics().keyCount
        guard count == keys else { throw BootstrapCheck.Failure("the old machine holds \(count) keys after setting \(keys)") }
    }
}

/// The writes that reach the log after the snapshot was taken: R single-key
/// sets of workload W at ``version``, alternating between an old key
/// (spread evenly over the N old keys) and a new key (N, N + 1, …).
struct CatchUpWrites {
    /// The version of every catch-up value (the old machine's are version 0).
    static let version: UInt32 = 1

    /// The key numbers in the order they are written.
    let order: [UInt32]
    /// Records that set an old key, and that set a new key.
    let overwrites: Int
    let newKeys: Int

    /// The writes of `records` records after a state of keys `0..<oldKeys`.
    init(oldKeys: Int, records: Int) {
        overwrites = (records + 1) / 2
        newKeys = records / 2
        var order: [UInt32] = []
        order.reserveCapacity(records)
        for record in 0..<records {
            let index = record / 2
            if record.isMultiple(of: 2) {
                order.append(UInt32(index * oldKeys / overwrites))
            } else {
                order.append(UInt32(oldKeys + index))
            }
        }
        self.order = order
    }

    /// Every key written, with the value the last write gave it.
    func values() -> [[UInt8]: [UInt8]] {
        var values: [[UInt8]: [UInt8]] = [:]
        values.reserveCapacity(order.count)
        for i in order {
            let item = Workload.item(i, version: Self.version)
            values[item.key] = item.value
        }
        return values
    }
}

/// Whether a bootstrapped state is the old state plus the catch-up writes:
/// a walk of both in key order, every entry compared.
struct BootstrapCheck {
    /// What a check found wrong (exit status 3).
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = "bench bootstrap: " + description }
    }

    /// The update id the old state must still be at: the snapshot's.
    let snapshotUpdateID: UInt64

    /// Compares the state of `new` with that of `old` plus the writes of
    /// `catchUp` and returns the number of entries `new` holds.
    ///
    /// - Throws: ``Failure`` for the first difference, ``CacheError`` or
    ///   ``StateFileError`` when a state cannot be read.
    func compare(old oldCache: SharedCache, plus catchUp: CatchUpWrites, new newCache: SharedCache) throws -> Int {
        let old = try oldCache.snapshot()
        defer { old.close() }
        let new = try newCache.snapshot()
        defer { new.close() }
        guard old.updateID == snapshotUpdateID else {
            throw Failure("the old machine moved from update \(snapshotUpdateID) to \(old.updateID)")
        }
        let written = catchUp.values()
        var oldCursor = old.makeCursor()
        var newCursor = new.makeCursor()
        var oldEntry = try oldCursor.next()
        var count = 0
        var writtenSeen = 0
        while let (key, value) = try newCursor.next() {
            count += 1
            // An old key missing from the new state comes first.
            if let (oldKey, _) = oldEntry, oldKey.lexicographicallyPrecedes(key) {
                throw Failure("key \(Self.describe(oldKey)) of the old machine is missing on the new one")
            }
            var expected: [UInt8]?
            if let (oldKey, oldValue) = oldEntry, oldKey == key {
                expected = oldValue
                oldEntry = try oldCursor.next()
            }
            if let catchUpValue = written[key] {
                expected = catchUpValue
                writtenSeen += 1
            }
            guard let expected else { throw Failure("the new machine holds key \(Self.describe(key)), which nobody wrote") }
            guard expected == value else { throw Failure("the new machine holds another value for key \(Self.describe(key))") }
        }
        if let (oldKey, _) = oldEntry {
            throw Failure("key \(Self.describe(oldKey)) of the old machine is missing on the new one")
        }
        guard writtenSeen == written.count else {
            throw Failure("\(written.count - writtenSeen) of the \(written.count) keys written after the snapshot are missing on the new machine")
        }
        guard count == new.count else { throw Failure("the new machine counts \(new.count) keys but holds \(count)") }
        return count
    }

    /// A key of workload W (text) for a message.
    private static func describe(_ key: [UInt8]) -> String {
        String(decoding: key, as: UTF8.self)
    }
}
