import Glibc
import WhyCache
import WhyCacheTestSupport

/// Commands that exercise a shared-state file from a separate process.
///
/// The "group" workload keeps an invariant that a torn read would break:
/// keys `g<group>/<index>` of one group are always written together, in one
/// transaction, all with the same value (the transaction's version).
///
/// The "script" workload makes the whole state a function of the update id:
/// transaction `u` applies `StateScript.operations(u)`. A test replays the
/// script up to the update id it finds in the file and compares.
enum StateCommands {
    static let table: [String: HelperCommandBody] = [
        "state-group-writer": groupWriter,
        "state-group-reader": groupReader,
        "state-script-writer": scriptWriter,
        "state-pin-and-hold": pinAndHold,
        "state-open": openFile,
        "state-read-all": readAll,
        "state-rewrite": rewrite,
    ]

    /// `state-group-writer PATH GROUPS KEYS TRANSACTIONS`: commits TRANSACTIONS
    /// transactions, each rewriting every key of one random group.
    static func groupWriter(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        let groups: Int = try HelperCommand.integer(arguments, 1, "groups")
        let keys: Int = try HelperCommand.integer(arguments, 2, "keys per group")
        let transactions: Int = try HelperCommand.integer(arguments, 3, "transactions")
        let file = try SharedStateFile.open(at: path)
        HelperCommand.say("ready")
        var generator = SystemRandomNumberGenerator()
        for version in 1...transactions {
            let group = Int.random(in: 0..<groups, using: &generator)
            let value = Array(String(version).utf8) + [UInt8](repeating: UInt8(truncatingIfNeeded: version), count: 64)
            try file.write { transaction in
                for index in 0..<keys {
                    try transaction.setValue(value, forKey: Array("g\(group)/\(index)".utf8))
                }
                try transaction.setUpdateID(UInt64(version))
            }
        }
        HelperCommand.say("committed \(transactions)")
    }

    /// `state-group-reader PATH GROUPS KEYS SECONDS`: for SECONDS, takes
    /// snapshots and checks that every group is whole (point reads and a
    /// prefix iteration). Prints `reads N torn T`; exits 1 if T > 0.
    static func groupReader(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        let groups: Int = try HelperCommand.integer(arguments, 1, "groups")
        let keys: Int = try HelperCommand.integer(arguments, 2, "keys per group")
        let seconds: Double = Double(try HelperCommand.integer(arguments, 3, "seconds") as Int)
        let file = try SharedStateFile.open(at: path)
        HelperCommand.say("ready")
        let deadline = monotonicSeconds() + seconds
        var reads = 0
        var torn = 0
        var generator = SystemRandomNumberGenerator()
        var lastUpdateID: UInt64 = 0
        while monotonicSeconds() < deadline {
            let snapshot = try file.snapshot()
            if snapshot.updateID < lastUpdateID { torn += 1 }  // the state moved backwards
            lastUpdateID = snapshot.updateID
            let group = Int.random(in: 0..<groups, using: &generator)
            var seen: Set<[UInt8]?> = []
            for index in 0..<keys {
                seen.insert(try snapshot.value(forKey: Array("g\(group)/\(index)".utf8)))
            }
            var iterated: Set<[UInt8]> = []
            var iteratedCount = 0
            try snapshot.visitEntries(in: .prefix(Array("g\(group)/".utf8))) { _, value in
                iterated.insert(Array(value))
                iteratedCount += 1
                return true
            }
            if seen.count != 1 || !(iteratedCount == 0 || (iteratedCount == keys && iterated.count == 1)) {
                torn += 1
            }
            snapshot.close()
            // Unpinned reads too: each must see one whole commit.
            _ = try file.value(forKey: Array("g\(group)/0".utf8))
            reads += 1
        }
        HelperCommand.say("reads \(reads) torn \(torn)")
        if torn > 0 { exit(1) }
    }

    /// `state-script-writer PATH START COUNT`: applies script transactions
    /// START, START+1, … (each transaction u sets update id u), printing
    /// `committed u` after each. Runs COUNT transactions (0 = forever).
    static func scriptWriter(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        let count: Int = try HelperCommand.integer(arguments, 2, "count")
        let file = try SharedStateFile.open(at: path)
        var update = try file.updateID() + 1
        HelperCommand.say("ready \(update - 1)")
        var done = 0
        while count == 0 || done < count {
            let transaction = try file.beginWrite()
            for operation in StateScript.operations(update) {
                switch operation {
                case .set(let key, let value): try transaction.setValue(value, forKey: key)
                case .remove(let key): try transaction.removeValue(forKey: key)
                }
            }
            try transaction.setUpdateID(update)
            try transaction.commit()
            HelperCommand.say("committed \(update)")
            update += 1
            done += 1
        }
    }

    /// `state-rewrite PATH`: prints `ready`, rewrites the file in key order
    /// (``StateFileRewriter``), and prints `rewritten U K` (update id, keys)
    /// or `not-installed OUTCOME`.
    static func rewrite(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        HelperCommand.say("ready")
        let summary = try StateFileRewriter().rewrite(at: path)
        HelperCommand.say(summary.isInstalled ? "rewritten \(summary.updateID) \(summary.keyCount)" : "not-installed \(summary.outcome)")
    }

    /// `state-pin-and-hold PATH`: takes a snapshot, prints `pinned U`, and
    /// sleeps until killed.
    static func pinAndHold(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        let file = try SharedStateFile.open(at: path)
        let snapshot = try file.snapshot()
        HelperCommand.say("pinned \(snapshot.updateID)")
        while true { sleep(60) }
    }

    /// `state-open PATH [GO]`: opens (or creates) the file and prints its
    /// identity. With GO, first prints `waiting` and waits until a file exists
    /// at GO, so that a test can release many processes at the same moment.
    static func openFile(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        if arguments.count > 1 {
            let go = arguments[1]
            HelperCommand.say("waiting")
            while access(go, F_OK) != 0 { usleep(200) }
        }
        let file = try SharedStateFile.open(at: path)
        HelperCommand.say("file \(file.fileIdentifier) update \(try file.updateID())")
    }

    /// `state-read-all PATH`: opens an existing file (possibly damaged on
    /// purpose), verifies it, reads everything (full and prefix iteration,
    /// point reads of every key and of missing keys, statistics), runs one
    /// write transaction and reads again. Prints `ok N` (N keys read) or
    /// `error CASE: DESCRIPTION` for a `StateFileError`, `other-error ...` for
    /// any other error, and exits 0 in every case: a crash shows as a signal.
    static func readAll(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        do {
            let count = try readEverything(path)
            HelperCommand.say("ok \(count)")
        } catch let error as StateFileError {
            HelperCommand.say("error \(caseName(error)): \(error)")
        } catch {
            HelperCommand.say("other-error \(type(of: error)): \(error)")
        }
    }

    private static func readEverything(_ path: String) throws -> Int {
        var options = SharedStateFile.Options()
        options.createIfMissing = false
        let file = try SharedStateFile.open(at: path, options: options)
        _ = try file.statistics()
        _ = try file.verify()
        let snapshot = try file.snapshot()
        let entries = try snapshot.entries()
        for (key, value) in entries {
            guard try snapshot.value(forKey: key) == value, try file.contains(key) else {
                throw StateFileError.corrupted(path: path, reason: "read-all: a point read disagrees with the iteration")
            }
        }
        for probe in ["a", "k1", "missing-key", "\u{FF}"] {
            _ = try file.value(forKey: Array(probe.utf8))
        }
        var prefixed = 0
        for first in Set(entries.prefix(64).compactMap(\.key.first)) {
            prefixed += try snapshot.keys(in: .prefix([first])).count
        }
        _ = prefixed
        if let middle = entries.dropFirst(entries.count / 2).first {
            _ = try snapshot.entries(in: KeyRange(from: middle.key, upTo: entries.last?.key))
        }
        snapshot.close()
        // One write transaction on the damaged file, then everything again.
        try file.write { transaction in
            if let first = entries.first { try transaction.removeValue(forKey: first.key) }
            if let last = entries.last { try transaction.setValue([], forKey: last.key) }
            try transaction.setValue(Array("written by read-all".utf8), forKey: Array("read-all/new".utf8))
            try transaction.setUpdateID(transaction.baseUpdateID + 1)
        }
        let count = try file.verify()
        _ = try file.snapshot().entries()
        guard try file.value(forKey: Array("read-all/new".utf8)) == Array("written by read-all".utf8) else {
            throw StateFileError.corrupted(path: path, reason: "read-all: the written key reads back wrong")
        }
        return count
    }

    /// The name of the case of `error`, for tests that expect a specific one.
    static func caseName(_ error: StateFileError) -> String {
        switch error {
        case .invalidKeyLength: "invalidKeyLength"
        case .valueTooLong: "valueTooLong"
        case .notAStateFile: "notAStateFile"
        case .unsupportedFormatVersion: "unsupportedFormatVersion"
        case .unsupportedCreationFlags: "unsupportedCreationFlags"
        case .keyOutsideSubscription: "keyOutsideSubscription"
        case .truncated: "truncated"
        case .corrupted: "corrupted"
        case .notDurableAcrossRestart: "notDurableAcrossRestart"
        case .tooManyReaders: "tooManyReaders"
        case .fileFull: "fileFull"
        case .updateIDMovedBackwards: "updateIDMovedBackwards"
        case .transactionFinished: "transactionFinished"
        case .transactionInvalidated: "transactionInvalidated"
        case .closed: "closed"
        case .invalidOptions: "invalidOptions"
        case .needsWriteAccess: "needsWriteAccess"
        case .systemCallFailed: "systemCallFailed"
        }
    }

    static func monotonicSeconds() -> Double {
        Double(Clocks.monotonicNanoseconds()) * 1e-9
    }
}
