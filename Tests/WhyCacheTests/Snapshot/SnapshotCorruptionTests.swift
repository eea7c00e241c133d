import Foundation
import Testing
import WhyCache

/// Damaged, truncated and foreign input is rejected with a typed error
/// before anything is installed: the state file at the path stays
/// byte-identical and no temporary file is left behind.
@Suite struct SnapshotCorruptionTests {
    static let entries = [
        (key: bytes("alpha"), value: bytes("one")), (bytes("beta"), []), (bytes("delta"), bytes("three")),
        (bytes("gamma"), [UInt8](repeating: 0xAB, count: 130)),
    ]

    /// A directory holding an initialized state file `state` at update 10,
    /// read once (so that its reader table is as a restore leaves it), and
    /// a snapshot of `entries` at update 50 to damage.
    private struct Fixture {
        let directory: String
        let statePath: String
        /// The state file's bytes (`Data`, which compares with `memcmp`).
        let stateBytes: Data
        let snapshot: [UInt8]

        init(directory: String, compression: SnapshotCompression = .none) throws {
            self.directory = directory
            let source = try makeInitializedState(at: directory + "/source", entries: SnapshotCorruptionTests.entries, updateID: 50)
            snapshot = try snapshotBytes(of: source, writer: SnapshotWriter(compression: compression)).bytes
            try SharedStateFile.remove(at: directory + "/source")
            statePath = directory + "/state"
            try makeInitializedState(at: statePath, entries: [(bytes("old"), bytes("state"))], updateID: 10)
            #expect(try SharedStateFile.open(at: statePath).value(forKey: bytes("old")) == bytes("state"))
            stateBytes = try Data(contentsOf: URL(fileURLWithPath: statePath))
        }

        /// Restores `input` over the state file, expects a snapshot error and
        /// checks that nothing changed; returns the error.
        @discardableResult
        func expectRejected(_ input: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> SnapshotError? {
            let error = snapshotError(sourceLocation: sourceLocation) {
                try SnapshotRestorer().restore(from: memorySource(input, chunk: 37), at: statePath)
            }
            #expect((try? Data(contentsOf: URL(fileURLWithPath: statePath))) == stateBytes, "\(what): the state file changed", sourceLocation: sourceLocation)
            #expect((try? directoryNames(directory)) == ["state"], "\(what): files left behind", sourceLocation: sourceLocation)
            return error
        }
    }

    /// Every byte of a small snapshot, changed in two ways: the header's,
    /// the entries' and the trailer's checks each catch theirs.
    @Test func everySingleByteChangeIsRejected() throws {
        try withTemporaryDirectory { directory in
            let fixture = try Fixture(directory: directory)
            let snapshot = fixture.snapshot
            let headerLength = 52
            #expect(snapshot.count == HandmadeSnapshot.streamLength(of: Self.entries))
            let lastValue = snapshot.count - 20 - 130..<snapshot.count - 20
            for offset in snapshot.indices {
                for flip: UInt8 in [0x01, 0xFF] {
                    var damaged = snapshot
                    damaged[offset] ^= flip
                    let error = fixture.expectRejected(damaged, "byte \(offset) ^ \(flip)")
                    switch offset {
                    case 0..<8:
                        #expect(error == .notASnapshot)
                    case 8..<12:
                        #expect(error == .unsupportedFormatVersion(found: 1 ^ UInt32(flip) << (8 * UInt32(offset - 8)), supported: 1))
                    case 16..<headerLength:
                        #expect(error == .checksumMismatch(.header), "byte \(offset) ^ \(flip)")
                    case lastValue:
                        // Inside the last value: only the stream's checksum can tell.
                        #expect(error == .checksumMismatch(.stream), "byte \(offset) ^ \(flip)")
                    case snapshot.count - 4..<snapshot.count:
                        #expect(error == .checksumMismatch(.stream))
                    default:
                        break
                    }
                }
            }
        }
    }

    /// Every prefix of a snapshot, plain and compressed, is rejected.
    @Test(arguments: [SnapshotCompression.none, .gzip(level: 6)])
    func everyTruncationIsRejected(compression: SnapshotCompression) throws {
        try withTemporaryDirectory { directory in
            let fixture = try Fixture(directory: directory, compression: compression)
            for length in 0..<fixture.snapshot.count {
                let error = fixture.expectRejected(Array(fixture.snapshot[..<length]), "the first \(length) bytes")
                if compression == .none {
                    #expect(error == .truncated(offset: UInt64(length)), "the first \(length) bytes")
                }
            }
        }
    }

    /// Damaged compressed input is rejected, by zlib or by the snapshot's
    /// own checks. (Bytes 3 to 9 of a gzip stream — flags, time, extra
    /// flags, operating system — are not checked by gzip itself.)
    @Test func damagedGzipIsRejected() throws {
        try withTemporaryDirectory { directory in
            let fixture = try Fixture(directory: directory, compression: .gzip(level: 6))
            let snapshot = fixture.snapshot
            for offset in [0, 1, 2] + Array(10..<snapshot.count) {
                var damaged = snapshot
                damaged[offset] ^= 0xFF
                fixture.expectRejected(damaged, "gzip byte \(offset)")
            }
            #expect(fixture.expectRejected(snapshot + [0], "a byte after the gzip member") != nil)
            let doubled = snapshot + snapshot
            #expect(
                fixture.expectRejected(doubled, "a second copy after the first")
                    == .corrupt(offset: UInt64(HandmadeSnapshot.streamLength(of: Self.entries)), reason: "bytes follow the trailer"))
        }
    }

    /// Input that is no snapshot at all.
    @Test func foreignInputIsRejected() throws {
        try withTemporaryDirectory { directory in
            let fixture = try Fixture(directory: directory)
            #expect(fixture.expectRejected([], "nothing") == .truncated(offset: 0))
            #expect(fixture.expectRejected(Array("WCSNAP".utf8), "a piece of the magic") == .truncated(offset: 6))
            #expect(fixture.expectRejected(Array("hello, world\n".utf8), "text") == .notASnapshot)
            #expect(fixture.expectRejected([UInt8](fixture.stateBytes.prefix(4096)), "a state file") == .notASnapshot)
            try Data("hello, world\n".utf8).write(to: URL(fileURLWithPath: directory + "/text"))
            try runGzip([directory + "/text"])
            let gzippedText = try fileContents(directory + "/text.gz")
            try FileManager.default.removeItem(atPath: directory + "/text.gz")
            #expect(fixture.expectRejected(gzippedText, "gzipped text") == .notASnapshot)
            #expect(fixture.expectRejected([0x1F, 0x8B, 0x08, 0x00, 0x00], "a broken gzip header") != nil)
        }
    }

    /// A later format version, or header flags this version does not know.
    @Test func futureFormatsAreRejected() throws {
        try withTemporaryDirectory { directory in
            let fixture = try Fixture(directory: directory)
            let entries = Self.entries
            #expect(
                fixture.expectRejected(HandmadeSnapshot(version: 2, entries: entries).encoded(), "version 2")
                    == .unsupportedFormatVersion(found: 2, supported: 1))
            #expect(fixture.expectRejected(HandmadeSnapshot(flags: 4, entries: entries).encoded(), "flag 2") == .unsupportedFlags(4))
        }
    }

    /// Streams with valid checksums that break one rule of the format each.
    @Test func ruleBreakingStreamsAreRejected() throws {
        try withTemporaryDirectory { directory in
            let fixture = try Fixture(directory: directory)
            let entries = Self.entries
            let firstEntry = UInt64(52)
            let cases: [(String, HandmadeSnapshot, SnapshotError)] = [
                ("keys out of order", HandmadeSnapshot(entries: [entries[1], entries[0]]),
                 .corrupt(offset: firstEntry + 6, reason: "keys are not in strictly ascending order")),
                ("a key twice", HandmadeSnapshot(entries: [entries[0], entries[0]]),
                 .corrupt(offset: firstEntry + 10, reason: "keys are not in strictly ascending order")),
                ("an empty key", HandmadeSnapshot(entries: [([], bytes("v"))]),
                 .corrupt(offset: firstEntry, reason: "key length 0 is outside 1...1024")),
                ("a key of 1025 bytes", HandmadeSnapshot(entries: [([UInt8](repeating: 1, count: 1025), [])]),
                 .corrupt(offset: firstEntry, reason: "key length 1025 is outside 1...1024")),
                ("a key length not in shortest form",
                 HandmadeSnapshot(entries: [entries[0]], keyLengthEncoding: { [UInt8($0) | 0x80, 0x00] }),
                 .corrupt(offset: firstEntry, reason: "a varint is longer than its shortest form or exceeds 64 bits")),
                ("fewer entries than the header counts", HandmadeSnapshot(entries: entries, headerKeyCount: 5, trailerKeyCount: 5),
                 .truncated(offset: UInt64(HandmadeSnapshot.streamLength(of: entries)))),
                ("more entries than the header counts", HandmadeSnapshot(entries: entries, headerKeyCount: 3, trailerKeyCount: 3),
                 .corrupt(offset: firstEntry + 10 + 6 + 12, reason: "no trailer after the 3 entries the header counts")),
                ("trailer and header counts differ", HandmadeSnapshot(entries: entries, trailerKeyCount: 3),
                 .corrupt(offset: UInt64(HandmadeSnapshot.streamLength(of: entries)) - 12, reason: "the trailer counts 3 keys, the header 4")),
                ("bytes after the trailer", HandmadeSnapshot(entries: entries, trailing: [0]),
                 .corrupt(offset: UInt64(HandmadeSnapshot.streamLength(of: entries)), reason: "bytes follow the trailer")),
                ("unsorted prefixes", HandmadeSnapshot(prefixes: [bytes("b"), bytes("a")], entries: []),
                 .corrupt(offset: 48, reason: "the key prefixes are not sorted, or one starts another")),
                ("a prefix that starts another", HandmadeSnapshot(prefixes: [bytes("a"), bytes("ab")], entries: []),
                 .corrupt(offset: 48, reason: "the key prefixes are not sorted, or one starts another")),
                ("an empty prefix", HandmadeSnapshot(prefixes: [[]], entries: []),
                 .corrupt(offset: 48, reason: "key prefix length 0 is outside 1...1024")),
            ]
            for (what, stream, expected) in cases {
                #expect(fixture.expectRejected(stream.encoded(), what) == expected, "\(what)")
            }
            // A snapshot with prefixes replaces only a state file with the same
            // prefixes (SnapshotSubscriptionTests); onto a new path its keys are read.
            let outside = HandmadeSnapshot(prefixes: [bytes("b"), bytes("g")], entries: entries).encoded()
            #expect(snapshotError { try SnapshotRestorer().restore(from: memorySource(outside, chunk: 37), at: directory + "/new") }
                == .corrupt(offset: 56, reason: "a key lies outside the snapshot's prefixes"))
            #expect(try directoryNames(directory) == ["state"])
            // A value longer than 64 MiB is refused from its length alone.
            var huge = HandmadeSnapshot(entries: [(bytes("k"), [])]).encoded()
            huge.replaceSubrange(54...54, with: HandmadeSnapshot.varint(UInt64(WhyCacheLimits.maximumValueLength) + 1))
            #expect(
                fixture.expectRejected(huge, "a value over the limit")
                    == .corrupt(offset: 54, reason: "value length 67108865 exceeds 67108864"))
        }
    }
}

extension HandmadeSnapshot {
    /// The length of the stream of `entries` with no prefixes: header,
    /// entries (each length below 128) and trailer.
    static func streamLength(of entries: [(key: [UInt8], value: [UInt8])]) -> Int {
        52 + entries.reduce(0) { $0 + 2 + $1.key.count + $1.value.count + ($1.value.count >= 128 ? 1 : 0) } + 20
    }
}
