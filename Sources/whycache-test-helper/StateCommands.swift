#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
            try snapshot.forEach(in: .prefix(Array("g\(group)/".utf8))) { _, value in
                iterated.insert(Array(value))
                iteratedCount += 1
                return true
            }
            if seen.count != 1 || !(iteratedCount == 0 || (iteratedCount == keys && iterated.count == 1)) {
                torn += 1
            }
            snapshot.close()
            // Unpinned reads too: each must see one whole commit.
            let first = try file.value(forKey: Array("g\(group)/0".utf8))
            _ = first
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

    /// `state-pin-and-hold PATH`: takes a snapshot, prints `pinned U`, and
    /// sleeps until killed.
    static func pinAndHold(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        let file = try SharedStateFile.open(at: path)
        let snapshot = try file.snapshot()
        HelperCommand.say("pinned \(snapshot.updateID)")
        while true { sleep(60) }
    }

    /// `state-open PATH`: opens (or creates) the file and prints its identity.
    static func openFile(_ arguments: [String]) throws {
        let path = try HelperCommand.string(arguments, 0, "path")
        let file = try SharedStateFile.open(at: path)
        HelperCommand.say("file \(file.fileIdentifier) update \(try file.updateID())")
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }
}
