import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool bench index-floor`: what a get through a per-file hash
/// index could cost at best (issue 17's design question), beside today's get.
///
/// It loads workload W into a state file in `/dev/shm`, then builds a private
/// open-addressing table (16-byte slots: the address of each key's value in
/// the mapping and the key's 64-bit hash, at most half full) and times random
/// gets through it — one slot probe, then the value copied out of the leaf in
/// the shared mapping — in rounds alternating with the trie's own gets
/// (``BenchReader``). A real index would add the pin and a key check; it
/// would also be smaller than this table (whose slots are twice what an index
/// needs), so the probe is the floor of such a design, not a prediction.
/// Hidden: a measurement for the read path's designers, not a product metric.
struct BenchIndexFloorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index-floor", abstract: "The get floor of a per-file hash index, beside the trie's get (design experiment).",
        shouldDisplay: false)

    @Option(name: .long, help: "Number of keys N.")
    var keys = 1_000_000

    @Option(name: .long, help: "Seconds per measurement.")
    var seconds = 2.0

    @Option(name: .long, help: "Rounds (index probes, then trie gets, in each).")
    var rounds = 3

    func run() throws {
        try requireAtLeastOne(["keys": keys, "rounds": rounds])
        let path = "\(scratchFolder())/whycache-bench-index-\(getpid()).state"
        defer { try? SharedStateFile.remove(at: path) }
        let file = try SharedStateFile.open(at: path)
        let n = UInt32(keys)
        let buffers = WorkloadBuffers(valueCapacity: 128)
        defer { buffers.deallocate() }
        guard let key = buffers.key.baseAddress, let out = buffers.value.baseAddress else { return }
        let keyBytes = UnsafeRawBufferPointer(start: key, count: Workload.keyLength)

        try Workload.write(Workload.permutation(n), shape: .user, version: 0, into: file, batch: 0)

        var capacity = 1
        while capacity < 2 * keys { capacity <<= 1 }
        let mask = capacity - 1
        let slots = UnsafeMutablePointer<Slot>.allocate(capacity: capacity)
        slots.initialize(repeating: Slot(value: nil, hash: 0), count: capacity)
        defer { slots.deallocate() }
        for i in 0..<n {
            Workload.makeKey(key, i)
            // The address stays valid: nothing writes the file from here on.
            let value = try file.withValue(forKeyBytes: keyBytes) { $0?.baseAddress }
            let hash = Self.hash(key)
            var index = Int(truncatingIfNeeded: hash) & mask
            while slots[index].value != nil { index = (index + 1) & mask }
            slots[index] = Slot(value: value, hash: hash)
        }

        for round in 1...rounds {
            var state = 1000 + UInt64(round)
            var sum: UInt64 = 0
            var operations = 0
            let start = monotonicSeconds()
            repeat {
                for _ in 0..<1024 {
                    Workload.makeKey(key, Workload.random(below: n, &state))
                    let hash = Self.hash(key)
                    var index = Int(truncatingIfNeeded: hash) & mask
                    while slots[index].hash != hash, slots[index].value != nil { index = (index + 1) & mask }
                    guard let value = slots[index].value else { throw ValidationError("a key is missing from the probe table") }
                    out.copyMemory(from: value, byteCount: Workload.valueLength)
                    sum &+= UInt64(out.load(fromByteOffset: Workload.valueLength - 1, as: UInt8.self))
                }
                operations += 1024
            } while monotonicSeconds() - start < seconds
            let probe = (monotonicSeconds() - start) * 1e9 / Double(operations)
            blackHole(sum)
            let get = try BenchReader.run(file: file, keys: n, seconds: seconds, seed: 2000 + UInt64(round))
            Measurement(
                metric: "index_floor_get_ns", value: probe, unit: "ns", keys: keys,
                note: "round \(round): trie get \(Int(get.nanosecondsPerOperation)) ns, \(String(format: "%.2f", get.nanosecondsPerOperation / probe))x the probe; table of \(capacity) 16-byte slots"
            ).emit()
        }
    }

    private struct Slot {
        var value: UnsafeRawPointer?
        var hash: UInt64
    }

    /// A 64-bit hash of a 13-byte key (two overlapping words, multiplied and folded).
    @inline(__always)
    private static func hash(_ key: UnsafeRawPointer) -> UInt64 {
        let head = key.loadUnaligned(as: UInt64.self) &* 0x9E37_79B9_7F4A_7C15
        let tail = key.loadUnaligned(fromByteOffset: Workload.keyLength - 8, as: UInt64.self) &* 0xC2B2_AE3D_27D4_EB4F
        var hash = head ^ (tail >> 7 | tail << 57)
        hash ^= hash >> 32
        hash &*= 0xD6E8_FEB8_6659_FD93
        return hash ^ (hash >> 32)
    }
}
