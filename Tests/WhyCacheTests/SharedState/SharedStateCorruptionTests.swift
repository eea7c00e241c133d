import Foundation
import Testing
import WhyCache
import WhyCacheTestSupport

/// Damaged state files: random byte flips and truncations must give a typed
/// error or a usable file, never a crash; specific damage gives the specific
/// error. The random trials read the damaged files in a helper process
/// (`state-read-all`), so that a crash shows as a signal exit status instead
/// of killing the test runner.
@Suite(.serialized) struct SharedStateCorruptionTests {
    static let seed: UInt64 = 0xBAD_F11E
    static let trials = 240
    /// The default geometry: a 4 KiB header and 1,024 reader slots of 64 bytes.
    static let heapStart = 4096 + 1024 * 64

    /// Builds a valid file with a few thousand keys, free blocks and retire
    /// lists, cut to the end of its heap (the growth reserve is all zeros).
    /// Returns its bytes and its heap end.
    static func makePristine(_ directory: String) throws -> (bytes: [UInt8], heapEnd: Int) {
        let path = directory + "/pristine"
        do {
            let file = try SharedStateFile.open(at: path)
            var generator = SeededGenerator(seed: seed)
            for round in 1...6 {
                try file.write { transaction in
                    for index in 0..<(round == 1 ? 3000 : 600) {
                        let key = Array("key\(UInt64.random(in: 0..<3000, using: &generator))/\(index % 7)".utf8)
                        let value = [UInt8](repeating: UInt8(round), count: Int.random(in: 0...300, using: &generator))
                        try transaction.setValue(value, forKey: key)
                    }
                    for _ in 0..<100 {
                        try transaction.removeValue(forKey: Array("key\(UInt64.random(in: 0..<3000, using: &generator))/0".utf8))
                    }
                    try transaction.setValue([UInt8](repeating: 0xAB, count: 70_000), forKey: Array("big".utf8))
                    try transaction.setValue([0x00, 0xFF], forKey: [0x00])
                    try transaction.setUpdateID(UInt64(round * 10))
                }
            }
            let statistics = try file.statistics()
            #expect(statistics.keyCount > 2000)
            let heapEnd = Self.heapStart + statistics.heapBytes
            #expect(truncate(path, off_t(heapEnd)) == 0)
        }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        return (bytes, bytes.count)
    }

    /// What a damaged copy looked like and how the helper fared with it.
    struct Trial {
        var description: String
        var bytes: [UInt8]
    }

    /// Writes each trial's file and runs `state-read-all` on it, two at a time;
    /// returns each trial's exit status and output line. A helper that runs
    /// for more than 60 seconds is killed (its status shows the signal).
    static func run(_ trials: [Trial], in directory: String) throws -> [(status: Int32, line: String, errors: String)] {
        var results: [(status: Int32, line: String, errors: String)] = []
        var index = 0
        while index < trials.count {
            let batch = trials[index..<min(index + 2, trials.count)]
            let helpers = try batch.enumerated().map { offset, trial in
                let path = directory + "/trial\(offset)"
                try Data(trial.bytes).write(to: URL(fileURLWithPath: path))
                let helper = try HelperProcess(["state-read-all", path])
                DispatchQueue.global().asyncAfter(deadline: .now() + 60) { [weak helper] in
                    if let helper, helper.process.isRunning { helper.send(SIGKILL) }
                }
                return helper
            }
            for helper in helpers {
                let result = helper.finish()
                results.append((result.status, result.lines.first ?? "", result.errors))
            }
            index += batch.count
        }
        return results
    }

    @Test func randomFlipsAndTruncationsGiveErrorsNeverACrash() throws {
        try withTemporaryDirectory { directory in
            let (pristine, heapEnd) = try Self.makePristine(directory)
            #expect(try Self.run([Trial(description: "pristine", bytes: pristine)], in: directory).first?.line.hasPrefix("ok ") == true)

            var generator = SeededGenerator(seed: Self.seed)
            let regions: [(name: String, range: Range<Int>)] = [
                ("checksummed header", 0..<64),
                ("shared header words", 64..<256),
                ("writer area", 256..<1376),
                ("header", 0..<4096),
                ("reader table", 4096..<Self.heapStart),
                ("heap", Self.heapStart..<heapEnd),
                ("anywhere", 0..<heapEnd),
            ]
            var trials: [Trial] = []
            for number in 0..<Self.trials {
                var bytes = pristine
                var description = "trial \(number):"
                switch number % 4 {
                case 0, 1, 2:
                    // 1-8 flipped bytes in one region (the heap twice as often).
                    let region = number % 4 == 2 ? regions[5] : regions.randomElement(using: &generator)!
                    description += " flips in \(region.name) at"
                    for _ in 0..<Int.random(in: 1...8, using: &generator) {
                        let offset = Int.random(in: region.range, using: &generator)
                        bytes[offset] ^= UInt8.random(in: 1...255, using: &generator)
                        description += " \(offset)"
                    }
                default:
                    let length: Int
                    switch Int.random(in: 0..<5, using: &generator) {
                    case 0: length = 0
                    case 1: length = Int.random(in: 1..<4096, using: &generator)
                    case 2: length = Int.random(in: 4096..<(Self.heapStart + 128), using: &generator)
                    default: length = Int.random(in: (Self.heapStart + 128)..<heapEnd, using: &generator)
                    }
                    bytes.removeSubrange(length...)
                    description += " truncated to \(length)"
                    if Bool.random(using: &generator), length > 0 {
                        let offset = Int.random(in: 0..<length, using: &generator)
                        bytes[offset] ^= UInt8.random(in: 1...255, using: &generator)
                        description += " and flipped at \(offset)"
                    }
                }
                trials.append(Trial(description: description, bytes: bytes))
            }
            // Damage aimed at words the allocator and the reader table trust:
            // offsets and counters with the high bit set or pointing anywhere.
            for (offset, value) in [
                (192, UInt64.max), (192, 1 << 63),  // reader-slot high water
                (256, 1), (256, UInt64.max),  // writer dirty word: forces recovery
                (264, 1 << 63), (264, 12), (264, UInt64(heapEnd) + (1 << 30)), (264, UInt64(Self.heapStart)),  // bump
                (280, 1 << 63), (280, 0x1234_5678_9AB8), (280, UInt64(Self.heapStart) + 8), (280, UInt64(heapEnd) - 8),  // newest retire list
                (512, 1 << 63), (512 + 8 * 5, UInt64(heapEnd) - 8), (512 + 8 * 10, UInt64(Self.heapStart)),  // free-list heads
                (64, UInt64(heapEnd) - 128), (64, 1 << 62), (64, 4096),  // commit pointer
            ] {
                var bytes = pristine
                bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self) }
                trials.append(Trial(description: "word at \(offset) set to \(value)", bytes: bytes))
            }

            let results = try Self.run(trials, in: directory)
            var outcomes: [String: Int] = [:]
            for (trial, result) in zip(trials, results) {
                #expect(result.status == 0, "\(trial.description): the reader crashed (status \(result.status)): \(result.errors.prefix(2000))")
                let words = result.line.split(separator: " ")
                let kind = words.first == "error" ? "error \(words.count > 1 ? words[1] : "")" : String(words.first ?? "")
                #expect(kind == "ok" || kind.hasPrefix("error "), "\(trial.description): unexpected outcome \(result.line)")
                outcomes[kind, default: 0] += 1
            }
            // The damage was real: most trials were refused, and refusals were typed.
            let refused = outcomes.filter { $0.key.hasPrefix("error ") }.values.reduce(0, +)
            #expect(refused > trials.count / 4, "outcomes \(outcomes)")
            #expect(outcomes["error corrupted:"] ?? 0 > 0 && outcomes["error truncated:"] ?? 0 > 0, "outcomes \(outcomes)")
            print("SharedStateCorruptionTests: \(trials.count) damaged files, outcomes \(outcomes.sorted { $0.key < $1.key })")
        }
    }

    // MARK: Specific damage, specific error (in this process)

    private func damaged(_ directory: String, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func openError(_ path: String) -> StateFileError? {
        do {
            let file = try SharedStateFile.open(at: path)
            _ = try file.verify()
            return nil
        } catch {
            return error
        }
    }

    @Test func specificDamageGivesTheSpecificError() throws {
        try withTemporaryDirectory { directory in
            let (pristine, heapEnd) = try Self.makePristine(directory)

            // Not a WhyCache file at all.
            let text = try damaged(directory, "text", Array(String(repeating: "not a state file\n", count: 600).utf8))
            #expect(openError(text) == .notAStateFile(path: text))
            let empty = try damaged(directory, "empty", [])
            #expect(openError(empty) == .notAStateFile(path: empty))
            var wrongMagic = pristine
            wrongMagic[3] ^= 0x20
            let magic = try damaged(directory, "magic", wrongMagic)
            #expect(openError(magic) == .notAStateFile(path: magic))

            // A format version this library does not read.
            var newer = pristine
            newer[8] = 5
            let version = try damaged(directory, "version", newer)
            #expect(openError(version) == .unsupportedFormatVersion(path: version, found: 5, supported: 4))
            // Versions 1 and 2 had another leaf layout: refused, not misread.
            for old: UInt8 in [1, 2] {
                var older = pristine
                older[8] = old
                let path = try damaged(directory, "version-\(old)", older)
                #expect(openError(path) == .unsupportedFormatVersion(path: path, found: UInt32(old), supported: 4))
            }

            // Truncated below the header, and below the first commit record.
            let short = try damaged(directory, "short", Array(pristine[0..<2000]))
            #expect(openError(short) == .truncated(path: short, size: 2000, required: 4096))
            let noHeap = try damaged(directory, "noheap", Array(pristine[0..<(Self.heapStart + 64)]))
            #expect(openError(noHeap) == .truncated(path: noHeap, size: Self.heapStart + 64, required: Self.heapStart + 128))
            // Truncated in the middle of the heap: the current commit's heap is missing.
            let half = try damaged(directory, "half", Array(pristine[0..<((Self.heapStart + heapEnd) / 2)]))
            switch openError(half) {
            case .truncated, .corrupted: break
            case let other: Issue.record("a file cut mid-heap gave \(String(describing: other))")
            }

            // A flipped byte in the checksummed header.
            for offset in [12, 20, 30, 40, 48, 61] {
                var flipped = pristine
                flipped[offset] ^= 0x04
                let path = try damaged(directory, "header\(offset)", flipped)
                #expect(openError(path) == .corrupted(path: path, reason: "header checksum mismatch"), "byte \(offset)")
            }

            // A flipped byte in the current commit record.
            let commitOffset = pristine.withUnsafeBytes { Int(UInt64(littleEndian: $0.load(fromByteOffset: 64, as: UInt64.self))) }
            var record = pristine
            record[commitOffset + 20] ^= 0x01
            let commit = try damaged(directory, "commit", record)
            guard case .corrupted = openError(commit) else {
                Issue.record("a damaged commit record gave \(String(describing: openError(commit)))")
                return
            }
        }
    }
}
