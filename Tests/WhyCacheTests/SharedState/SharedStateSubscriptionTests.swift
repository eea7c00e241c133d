import Foundation
import Testing
import WhyCache

/// State files that subscribe to key prefixes: the header block that stores
/// them (checked byte by byte against docs/FORMAT.md section 1.2), what a
/// transaction accepts, the limits, and damaged or unknown headers.
@Suite struct SharedStateSubscriptionTests {
    /// Options that subscribe to `prefixes`.
    private func subscribing(_ prefixes: [String]) -> SharedStateFile.Options {
        var options = SharedStateFile.Options()
        options.subscribedPrefixes = prefixes.map(bytes)
        return options
    }

    /// The error that opening `path` throws, or nil.
    private func openError(_ path: String) -> StateFileError? {
        do {
            _ = try SharedStateFile.open(at: path)
            return nil
        } catch {
            return error
        }
    }

    /// `value` as little-endian bytes.
    private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// Writes `bytes` as a file named `name` in `directory` and returns its path.
    private func write(_ bytes: [UInt8], _ directory: String, _ name: String) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func theHeaderHoldsTheCanonicalPrefixesAsDocumented() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/subscribed"
            let file = try SharedStateFile.open(at: path, options: subscribing(["user/", "b", "user/x", "a", "b"]))
            #expect(file.subscribedPrefixes == ["a", "b", "user/"].map(bytes))
            // Fixed at creation: opening it with other options changes nothing.
            #expect(try SharedStateFile.open(at: path, options: subscribing(["zzz"])).subscribedPrefixes == file.subscribedPrefixes)
            #expect(try SharedStateFile.open(at: path).subscribedPrefixes == file.subscribedPrefixes)

            let raw = try fileContents(path)
            #expect(Array(raw[8..<12]) == littleEndian(UInt32(4)), "format version 4")
            #expect(Array(raw[48..<52]) == littleEndian(UInt32(14)), "creation flag bits 1, 2 (tagged free lists) and 3 (checksummed retire lists), not durable")
            let entries: [UInt8] = [1, 0] + bytes("a") + [1, 0] + bytes("b") + [5, 0] + bytes("user/")
            let block = littleEndian(UInt32(3)) + littleEndian(UInt32(entries.count)) + entries
            #expect(Array(raw[2048..<(2048 + block.count)]) == block)
            let end = 2048 + block.count
            #expect(Array(raw[end..<(end + 4)]) == littleEndian(CRC32C.checksum(block)))
            #expect(Array(raw[end..<(end + 4)]) == [0x70, 0xC5, 0x86, 0x93], "the worked example of FORMAT.md")
            #expect(raw[(end + 4)..<4096].allSatisfy { $0 == 0 })

            // Without prefixes the file is what it was before they existed
            // (with the tagged free lists and checksummed retire lists of
            // every new file, bits 2 and 3).
            let plain = try SharedStateFile.open(at: directory + "/plain", options: subscribing(["x", ""]))
            #expect(plain.subscribedPrefixes.isEmpty)
            let plainRaw = try fileContents(directory + "/plain")
            #expect(Array(plainRaw[8..<12]) == littleEndian(UInt32(3)))
            #expect(Array(plainRaw[48..<52]) == littleEndian(UInt32(12)))
            #expect(plainRaw[1376..<4096].allSatisfy { $0 == 0 })
        }
    }

    @Test func aTransactionRefusesKeysOutsideTheSubscription() throws {
        try withTemporaryDirectory { directory in
            let file = try SharedStateFile.open(at: directory + "/state", options: subscribing(["b", "user/"]))
            try file.write { transaction in
                try transaction.setValue(bytes("1"), forKey: bytes("b"))
                try transaction.setValue(bytes("2"), forKey: bytes("user/7"))
                for outside in ["a", "user", "c", "User/1", "ab"] {
                    #expect(throws: StateFileError.keyOutsideSubscription(path: file.path)) {
                        try transaction.setValue(bytes("x"), forKey: bytes(outside))
                    }
                    #expect(try !transaction.removeValue(forKey: bytes(outside)))
                }
                // The refusals changed nothing: the transaction commits.
                try transaction.setValue(bytes("3"), forKey: bytes("bb"))
                try transaction.setUpdateID(3)
            }
            let view = try file.snapshot()
            defer { view.close() }
            #expect(try view.keys() == ["b", "bb", "user/7"].map(bytes))
            #expect(try file.verify() == 3)
        }
    }

    @Test func prefixesBeyondTheLimitsAreInvalidOptions() throws {
        try withTemporaryDirectory { directory in
            func problem(_ prefixes: [[UInt8]]) -> StateFileError? {
                var options = SharedStateFile.Options()
                options.subscribedPrefixes = prefixes
                do {
                    let path = directory + "/state-\(UInt64.random(in: 0...UInt64.max))"
                    defer { try? SharedStateFile.remove(at: path) }
                    _ = try SharedStateFile.open(at: path, options: options)
                    return nil
                } catch {
                    return error
                }
            }
            func isInvalidOptions(_ error: StateFileError?) -> Bool {
                if case .invalidOptions = error { return true }
                return false
            }
            let maximum = SharedStateFile.Options.maximumSubscribedPrefixCount
            #expect(maximum == 64 && SharedStateFile.Options.maximumSubscribedPrefixBytes == 1536)
            // 64 prefixes of 24 bytes: exactly at both limits.
            let full = (0..<maximum).map { bytes(String(format: "%02d", $0) + String(repeating: "p", count: 22)) }
            #expect(problem(full) == nil)
            // Limits apply to the canonical form: duplicates and covered prefixes are free.
            #expect(problem(full + [full[0], full[1] + bytes("more")]) == nil)
            #expect(isInvalidOptions(problem(full + [bytes("extra")])))
            #expect(isInvalidOptions(problem(Array(full.dropLast()) + [full.last! + bytes("x")])))
            #expect(isInvalidOptions(problem([[UInt8](repeating: 0x61, count: 1025)])))
            #expect(problem([[UInt8](repeating: 0x61, count: 1024)]) == nil)
        }
    }

    @Test func aDamagedOrUnknownHeaderIsRefusedWithItsOwnError() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/subscribed"
            _ = try SharedStateFile.open(at: path, options: subscribing(["a", "user/"]))
            let pristine = try fileContents(path)
            let blockEnd = 2048 + 8 + 3 + 7

            // Every byte of the block, checksum included, is covered.
            for offset in [2048, 2052, 2056, 2058, blockEnd - 1, blockEnd, blockEnd + 3] {
                var damaged = pristine
                damaged[offset] ^= 0x10
                let damagedPath = try write(damaged, directory, "block-\(offset)")
                guard case .corrupted(_, let reason) = openError(damagedPath), reason.hasPrefix("subscribed prefixes: ") else {
                    Issue.record("a flipped byte at \(offset) gave \(String(describing: openError(damagedPath)))")
                    continue
                }
            }

            // A block that checks out but breaks a rule: prefixes out of order.
            var unsorted = pristine
            let entries: [UInt8] = [5, 0] + bytes("user/") + [1, 0] + bytes("a")
            unsorted.replaceSubrange(2056..<(2056 + entries.count), with: entries)
            unsorted.replaceSubrange(blockEnd..<(blockEnd + 4), with: littleEndian(CRC32C.checksum(unsorted[2048..<blockEnd])))
            let unsortedPath = try write(unsorted, directory, "unsorted")
            #expect(openError(unsortedPath) == .corrupted(path: unsortedPath, reason: "subscribed prefixes: not sorted, or one starts another"))

            /// The pristine file with `change` made and its header checksum
            /// recomputed, written as `name`; returns its path.
            func resealed(_ name: String, _ change: (inout [UInt8]) -> Void) throws -> String {
                var file = pristine
                change(&file)
                resealStateFileHeader(&file)
                return try write(file, directory, name)
            }

            // A creation flag this version does not know: a newer writer's feature.
            let unknown = try resealed("unknown-flag") { $0[48] |= 0x10 }
            #expect(openError(unknown) == .unsupportedCreationFlags(path: unknown, flags: 0x1E))
            // The subscription flag and the format version go together.
            let mismatched = [try resealed("unflagged") { $0[48] &= ~0x02 }, try resealed("plain-version") { $0[8] = 3 }]
            for path in mismatched {
                guard case .corrupted = openError(path) else {
                    Issue.record("\(path) gave \(String(describing: openError(path)))")
                    continue
                }
            }
            // A version this library does not read.
            let newer = try resealed("newer") { $0[8] = 5 }
            #expect(openError(newer) == .unsupportedFormatVersion(path: newer, found: 5, supported: 4))
        }
    }
}
