import Foundation
import Testing
import WhyCache

/// Behaviour specific to ``FileDatastore``: files on disk, torn tails,
/// corruption, reopening, initialization errors.
@Suite struct FileDatastoreTests {
    private typealias Fixture = FileDatastoreFixture

    private func payload(_ index: Int, size: Int = 100) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: index &* 7 &+ $0) }
    }

    /// Releasing the maintenance lock frees it at once, also while another
    /// descriptor shares its open file description, as a child process that
    /// this process is spawning does between its fork and its exec (seen:
    /// a rewrite right after a release refused under a busy test run).
    @Test func aReleasedMaintenanceLockIsFreeWhileItsDescriptionIsShared() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            let lock = try await store.acquireMaintenanceLock()
            let lockPath = URL(fileURLWithPath: directory + "/maintenance.lock").resolvingSymlinksInPath().path
            let descriptor = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap(Int32.init).first { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == lockPath
            }
            let shared = dup(try #require(descriptor, "the lock's descriptor was not found"))
            #expect(shared >= 0)
            defer { close(shared) }
            await lock.release()
            let again = try await store.acquireMaintenanceLock()
            await again.release()
        }
    }

    @Test func reopeningFindsEverything() async throws {
        try await withTemporaryDirectory { directory in
            let first = try await Fixture.makeStore(directory)
            for batch in 0..<30 {
                _ = try await first.append(contentsOf: (0..<10).map { payload(batch * 10 + $0) })
            }
            #expect(try Fixture.segmentPaths(directory).count > 5)
            let reopened = try await FileDatastore.open(directory: directory, options: Fixture.smallSegments)
            #expect(try await reopened.latestUpdateID() == 300)
            let entries = try await Fixture.allRecords(reopened)
            #expect(entries.map(\.updateID) == Array(1...300))
            #expect(entries.map(\.payload) == (0..<300).map { payload($0) })
            // Reads starting in the middle of a segment, from a fresh process view.
            let again = try await FileDatastore.open(directory: directory, options: Fixture.smallSegments)
            #expect(try await again.readRecords(after: 211, through: 214, limits: .default).map(\.updateID) == [212, 213, 214])
            #expect(try await again.append(payload(300)) == 301)
            #expect(try await first.latestUpdateID() == 301)
        }
    }

    /// A log whose segments end below its newest checkpoint (segment files
    /// lost) is refused before anything is appended: an append would reuse
    /// ids that readers have seen, and its write could never be read.
    @Test func aLogThatEndsBelowItsCheckpointIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            for batch in 0..<20 {
                _ = try await store.append(contentsOf: (0..<10).map { payload(batch * 10 + $0) })
            }
            let writer = try await store.beginCheckpoint(at: 200)
            try await writer.append(payload(0))
            _ = try await writer.publish()
            let segments = try Fixture.segmentPaths(directory)
            #expect(segments.count > 3)
            for segment in segments.suffix(segments.count / 2) { try FileManager.default.removeItem(atPath: segment) }

            let reopened = try await FileDatastore.open(directory: directory, options: Fixture.smallSegments)
            for attempt in [
                { _ = try await reopened.append(payload(999)) },
                { _ = try await reopened.latestUpdateID() },
            ] as [() async throws -> Void] {
                let error = await caughtDatastoreError(attempt)
                guard case .corruptRecord(_, _, let reason)? = error else {
                    Issue.record("expected corruptRecord, got \(String(describing: error))")
                    continue
                }
                #expect(reason.contains("a checkpoint at update 200"), "\(reason)")
            }
            #expect(try Fixture.segmentPaths(directory).count == segments.count - segments.count / 2)
            defer { try? FileManager.default.removeItem(atPath: directory + "-state") }
            let result = try await ToolRunner.run(["set", "k", "v", "--store", "file://\(directory)", "--state", directory + "-state"])
            #expect(result.status == 3, "\(result.lines) \(result.errors)")
            #expect(result.lines.isEmpty)
        }
    }

    @Test func segmentsRollOverAtTheConfiguredSize() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            for index in 0..<100 { _ = try await store.append(payload(index, size: 500)) }
            let segments = try Fixture.segmentPaths(directory)
            #expect(segments.count >= 12)
            // Every segment but the last stops at the first frame that reaches the size.
            for segment in segments.dropLast() {
                #expect(try Fixture.size(segment) < 4_096 + 20 + 500)
            }
            #expect(segments.first.map { $0.hasSuffix("segment-00000000000000000001.log") } == true)
        }
    }

    @Test func tornTailIsInvisibleAndRepairedByTheNextAppend() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory, options: FileDatastoreOptions(syncPolicy: .never))
            _ = try await store.append(contentsOf: (0..<4).map { payload($0) })
            let segment = try #require(try Fixture.segmentPaths(directory).last)
            let complete = try Fixture.size(segment)
            _ = try await store.append(payload(4))
            let withFifth = try Fixture.size(segment)
            #expect(withFifth == complete + 20 + 100)
            let full = try Data(contentsOf: URL(fileURLWithPath: segment))
            for cut in [1, 10, 19, 20, 21, 60, 119] {
                // The fifth frame cut short, as a writer killed mid-write leaves it.
                try full.write(to: URL(fileURLWithPath: segment))
                try Fixture.truncate(segment, to: complete + cut)
                // Neither a fresh view nor the one that wrote the frame sees it.
                let fresh = try await FileDatastore.open(directory: directory)
                #expect(try await fresh.latestUpdateID() == 4, "cut \(cut)")
                #expect(try await Fixture.allRecords(fresh).map(\.payload) == (0..<4).map { payload($0) })
                #expect(try await store.readRecords(after: 4, through: nil, limits: .default).isEmpty)
            }
            // The instance that wrote the fifth record re-verifies the segment instead of
            // trusting what it knew, then repairs it.
            #expect(try await store.append(payload(40, size: 30)) == 5)
            #expect(try Fixture.size(segment) == complete + 20 + 30)
            let entries = try await Fixture.allRecords(store)
            #expect(entries.map(\.payload) == (0..<4).map { payload($0) } + [payload(40, size: 30)])
        }
    }

    @Test func zeroFilledTailIsInvisibleAndRepaired() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            _ = try await store.append(contentsOf: (0..<3).map { payload($0) })
            let segment = try #require(try Fixture.segmentPaths(directory).last)
            let complete = try Fixture.size(segment)
            try Fixture.append([UInt8](repeating: 0, count: 5_000), to: segment)
            let fresh = try await FileDatastore.open(directory: directory)
            #expect(try await fresh.latestUpdateID() == 3)
            #expect(try await fresh.append(payload(3)) == 4)
            #expect(try Fixture.size(segment) == complete + 120)
            #expect(try await Fixture.allRecords(fresh).count == 4)
        }
    }

    /// A bit flipped in the last record, written in full long ago, is
    /// damage, not an unfinished write: reads and appends report it and the
    /// appender never truncates it, so its id is never handed out again
    /// (a machine may have applied the record).
    @Test func aDamagedLastRecordIsCorruptionAndItsIDIsNeverReused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory, options: FileDatastoreOptions(syncPolicy: .never))
            _ = try await store.append(contentsOf: (0..<5).map { payload($0) })
            let segment = try #require(try Fixture.segmentPaths(directory).last)
            let size = try Fixture.size(segment)
            // A byte in the middle of the fifth frame's 100-byte payload.
            try Fixture.flipByte(segment, at: size - 50)
            let fresh = try await FileDatastore.open(directory: directory)
            await #expect(throws: DatastoreError.self) { _ = try await fresh.readRecords(after: 4, through: nil, limits: .default) }
            await #expect(throws: DatastoreError.self) { _ = try await fresh.latestUpdateID() }
            do throws(DatastoreError) {
                _ = try await fresh.append(payload(9))
                Issue.record("an append went past the damaged record")
            } catch {
                guard case .corruptRecord(_, let updateID, _) = error else {
                    Issue.record("expected corruptRecord, got \(error)")
                    return
                }
                #expect(updateID == 5)
            }
            #expect(try Fixture.size(segment) == size)
        }
    }

    /// A last frame written in full by size but with a page of zeros in its
    /// payload is what a machine crash leaves of a write that had not reached
    /// the disk: a torn tail, invisible and replaced by the next append.
    @Test func aLastRecordWithAZeroedPageIsATornTail() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory, options: FileDatastoreOptions(syncPolicy: .never))
            _ = try await store.append(contentsOf: (0..<3).map { payload($0) })
            let segment = try #require(try Fixture.segmentPaths(directory).last)
            let complete = try Fixture.size(segment)
            _ = try await store.append(payload(3, size: 10_000))
            let full = try Fixture.size(segment)
            // Zero the file's last whole page (it lies inside the payload).
            let page = (full / 4096 - 1) * 4096
            #expect(page > complete + 20)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
            try handle.seek(toOffset: UInt64(page))
            try handle.write(contentsOf: Data(count: 4096))
            try handle.close()
            let fresh = try await FileDatastore.open(directory: directory)
            #expect(try await fresh.latestUpdateID() == 3)
            #expect(try await fresh.append(payload(4)) == 4)
            #expect(try await Fixture.allRecords(fresh).map(\.payload) == (0..<3).map { payload($0) } + [payload(4)])
        }
    }

    @Test func corruptFrameInTheMiddleIsAnError() async throws {
        // Damage in a payload and in a frame header, each followed by valid frames.
        for damagedOffset in [32 + 120 + 20 + 50, 32 + 120 + 2] {
            try await withTemporaryDirectory { directory in
                let store = try await Fixture.makeStore(directory, options: FileDatastoreOptions(syncPolicy: .never))
                _ = try await store.append(contentsOf: (0..<5).map { payload($0) })
                let segment = try #require(try Fixture.segmentPaths(directory).last)
                let size = try Fixture.size(segment)
                try Fixture.flipByte(segment, at: damagedOffset)
                let fresh = try await FileDatastore.open(directory: directory)
                await #expect(throws: DatastoreError.self) {
                    _ = try await fresh.readRecords(after: 0, through: nil, limits: .default)
                }
                do throws(DatastoreError) {
                    _ = try await fresh.latestUpdateID()
                    Issue.record("latestUpdateID read past corruption")
                } catch {
                    guard case .corruptRecord(let location, let updateID, _) = error else {
                        Issue.record("expected corruptRecord, got \(error)")
                        return
                    }
                    #expect(location.contains("segment-00000000000000000001.log"))
                    #expect(updateID == 2)
                }
                // An appender must not "repair" data that is followed by valid frames.
                await #expect(throws: DatastoreError.self) { _ = try await fresh.append(payload(9)) }
                #expect(try Fixture.size(segment) == size)
            }
        }
    }

    @Test func removalDeletesWholeSegmentsOnly() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            for batch in 0..<20 {
                _ = try await store.append(contentsOf: (0..<10).map { payload(batch * 10 + $0) })
            }
            let before = try Fixture.segmentPaths(directory).count
            _ = try await store.beginCheckpoint(at: 150).publish()
            try await store.removeRecords(through: 150)
            let remaining = try Fixture.segmentPaths(directory)
            #expect(remaining.count < before)
            let firstName = try #require(remaining.first).split(separator: "/").last.map(String.init) ?? ""
            let firstID = try #require(UInt64(firstName.dropFirst("segment-".count).dropLast(".log".count)))
            #expect(firstID <= 151)
            let fresh = try await FileDatastore.open(directory: directory, options: Fixture.smallSegments)
            #expect(try await fresh.firstRetainedUpdateID() == 151)
            #expect(try await Fixture.allRecordsAfter(150, fresh).map(\.updateID) == Array(151...200))
            await #expect(throws: DatastoreError.historyRewritten(firstRetainedUpdateID: 151)) {
                _ = try await fresh.readRecords(after: 149, through: nil, limits: .default)
            }
        }
    }

    @Test func abandonedCheckpointFilesAreCleanedUp() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Fixture.makeStore(directory)
            _ = try await store.append(payload(0))
            // A temporary checkpoint file that nobody holds a lock on, as a dead writer leaves it.
            let stale = directory + "/checkpoint-00000000000000000001.ckpt.tmp-1-42"
            #expect(FileManager.default.createFile(atPath: stale, contents: Data([1, 2, 3])))
            let writer = try await store.beginCheckpoint(at: 1)
            #expect(!FileManager.default.fileExists(atPath: stale))
            // A live writer's file survives another writer's cleanup.
            let other = try await store.beginCheckpoint(at: 1)
            let temporaries = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
            #expect(temporaries.count == 2)
            await other.abandon()
            let info = try await writer.publish()
            #expect(try await store.latestCheckpoint() == info)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }.isEmpty)
        }
    }

    @Test func directoriesThatAreNotDatastoresAreRejected() async throws {
        try await withTemporaryDirectory { directory in
            func expectNotADatastore(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async {
                do throws(DatastoreError) {
                    _ = try await FileDatastore.open(directory: path)
                    Issue.record("opened \(path)", sourceLocation: sourceLocation)
                } catch {
                    guard case .notADatastore = error else {
                        Issue.record("expected notADatastore, got \(error)", sourceLocation: sourceLocation)
                        return
                    }
                }
            }
            await expectNotADatastore(directory + "/missing")
            await expectNotADatastore(directory)

            let foreign = directory + "/foreign"
            try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: foreign + "/notes.txt", contents: Data("hello".utf8)))
            await #expect(throws: DatastoreError.self) { try await FileDatastore(directory: foreign).createIfMissing() }
            await expectNotADatastore(foreign)

            let damaged = directory + "/damaged"
            _ = try await Fixture.makeStore(damaged)
            try Fixture.flipByte(damaged + "/datastore.meta", at: 3)
            await expectNotADatastore(damaged)
            await #expect(throws: DatastoreError.self) { _ = try await FileDatastore(directory: damaged).latestUpdateID() }
        }
    }

    @Test func invalidOptionsAreRejected() {
        #expect(throws: DatastoreError.self) {
            _ = try FileDatastore(directory: "/tmp/x", options: FileDatastoreOptions(segmentSize: 100))
        }
        #expect(throws: DatastoreError.self) {
            _ = try FileDatastore(directory: "/tmp/x", options: FileDatastoreOptions(readChunkSize: 0))
        }
        #expect(throws: DatastoreError.self) { _ = try FileDatastore(directory: "") }
    }

    @Test func errorsDescribeThemselves() {
        let errors: [DatastoreError] = [
            .unavailable(reason: "down"), .ioFailure(operation: "open", path: "/x", errno: 2),
            .notADatastore(path: "/x", reason: "empty"), .corruptRecord(location: "/x at byte 3", updateID: 4, reason: "bad"),
            .corruptRecord(location: "/x", updateID: nil, reason: "bad"), .historyRewritten(firstRetainedUpdateID: 5),
            .recordTooLarge(size: 10, maximum: 5), .maintenanceLockHeld, .noCheckpointCovers(updateID: 3),
            .checkpointNotFound(updateID: 3), .invalidRequest(reason: "no"), .invalidConfiguration(reason: "no"),
            .contractViolated(reason: "no"),
        ]
        for error in errors { #expect(!error.description.isEmpty) }
        #expect(DatastoreError.ioFailure(operation: "open", path: "/x", errno: 2).description.contains("No such file"))
    }
}

extension FileDatastoreFixture {
    /// Every record of `store` after `updateID`.
    static func allRecordsAfter(_ updateID: UInt64, _ store: some Datastore) async throws -> [LogEntry] {
        var entries: [LogEntry] = []
        for try await entry in store.records(after: updateID) { entries.append(entry) }
        return entries
    }
}
