/// A deterministic sequence of write transactions whose resulting state is a
/// pure function of the update id, so that a test can check a file written
/// by another (possibly killed) process against a replay.
///
/// Transaction `u` overwrites 200 keys out of 5,000 with values whose sizes
/// vary with `u`, deletes 50 keys, and every tenth transaction rewrites one
/// 100 KB value.
public enum StateScript {
    /// One change of a script transaction.
    public enum Operation: Sendable, Hashable {
        case set(key: [UInt8], value: [UInt8])
        case remove(key: [UInt8])
    }

    /// The changes of transaction `update` (1, 2, …), in order.
    public static func operations(_ update: UInt64) -> [Operation] {
        var operations: [Operation] = []
        let u = Int(truncatingIfNeeded: update)
        for index in 0..<200 {
            let key = Array("k\((u &* 7919 &+ index &* 104_729) % 5000)".utf8)
            let length = 8 + (u % 7) * 10 + index % 3
            var value = Array("\(u):\(index):".utf8)
            while value.count < length { value.append(UInt8(truncatingIfNeeded: u &+ value.count)) }
            operations.append(.set(key: key, value: value))
        }
        for index in 0..<50 {
            operations.append(.remove(key: Array("k\((u &* 31 &+ index &* 977) % 5000)".utf8)))
        }
        if u % 10 == 0 {
            operations.append(.set(key: Array("big".utf8), value: [UInt8](repeating: UInt8(truncatingIfNeeded: u), count: 100_000)))
        }
        return operations
    }

    /// The state after transactions 1 through `update`.
    public static func state(through update: UInt64) -> [[UInt8]: [UInt8]] {
        var state: [[UInt8]: [UInt8]] = [:]
        guard update > 0 else { return state }
        for u in 1...update {
            for operation in operations(u) {
                switch operation {
                case .set(let key, let value): state[key] = value
                case .remove(let key): state[key] = nil
                }
            }
        }
        return state
    }
}
