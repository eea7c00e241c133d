import Glibc

/// Checks a cache's shared state against the log: rebuilds the state from
/// the datastore into a private scratch file and compares the two key by
/// key, at one update id.
///
/// The state file is checked structurally first (``/WhyCacheState/SharedStateFile/verify()``).
/// Then the scratch file is built from the latest checkpoint (when the log no
/// longer starts at 1) and the log to its end, position `P`. The shared state
/// is brought to `P` with ``SharedCache/update(through:)``, as any process
/// would; when it is already past `P` (another process updated it), the
/// scratch file is continued to the end of the log instead, and the two meet
/// within a few rounds unless writers keep the log moving faster than the
/// rounds go. Both states are then read through pinned views, so the
/// comparison is of one point in time while other processes keep reading,
/// writing and updating.
///
/// Why the scratch is always built to the end of the log: a compacting
/// datastore may have deleted a record at or before `P` because a newer
/// record of the same key follows (see ``Datastore``). A replay that stops
/// at an arbitrary id could miss that key; a replay that reads to the end
/// of the log cannot.
///
/// Keys that a history rewrite's filter dropped on purpose are reported as
/// differences on machines that still hold them: that is the one intended
/// divergence (``HistoryRewriter``).
public struct StateVerifier: Sendable {
    /// The cache whose state is checked.
    public let cache: SharedCache
    /// The folder of the scratch state file.
    public let scratchDirectory: String
    /// How many rounds of "bring both to one update id" to try before giving up.
    public var maximumRounds = 10

    /// A verifier for `cache` that builds its scratch file in `scratchDirectory`.
    public init(cache: SharedCache, scratchDirectory: String) {
        self.cache = cache
        self.scratchDirectory = scratchDirectory
    }

    /// Compares the shared state with a replay of the log and returns the
    /// outcome, with at most `maximumDifferences` differences listed (all
    /// are counted).
    ///
    /// - Parameters:
    ///   - maximumDifferences: How many differences the outcome lists at
    ///     most (default 20); all of them are counted.
    ///   - progress: Called with the keys compared so far and the key count
    ///     of the state, during the comparison.
    /// - Throws: ``CacheError/stateFile(_:)`` when the state file is damaged
    ///   (``/WhyCacheState/StateFileError/corrupted(path:reason:)``) or the scratch file
    ///   cannot be made; ``CacheError/verificationDidNotSettle(rounds:)``
    ///   when the log kept moving; datastore and corrupt-record errors.
    public func verify(
        maximumDifferences: Int = 20, progress: ((_ compared: Int, _ total: Int) -> Void)? = nil
    ) async throws(CacheError) -> StateVerification {
        try cache.withStateFile { (file) throws(CacheError) in
            do throws(StateFileError) { _ = try file.verify() } catch { throw CacheError(error) }
        }
        AbandonedFiles.remove(in: scratchDirectory, prefix: Self.scratchPrefix)
        let path = AbandonedFiles.temporaryPath(prefix: "\(scratchDirectory)/\(Self.scratchPrefix)")
        defer { FileSystem<SystemCallError>.removeLeftover(path) }
        var options = cache.configuration.stateFileOptions
        options.durability = .processCrash
        let scratch: SharedStateFile
        do { scratch = try SharedStateFile.open(at: path, options: options) } catch { throw CacheError(error) }
        let builder = PrivateStateBuilder(datastore: cache.datastore, configuration: cache.configuration)

        var position = try await buildBase(into: scratch, with: builder)
        for _ in 0..<maximumRounds {
            let local = try cache.updateID()
            if local < position {
                try await cache.update(through: position)
            }
            let view = try cache.snapshot()
            defer { view.close() }
            if view.updateID > position {
                position = try await builder.build(into: scratch, from: nil, through: nil).position
                continue
            }
            guard view.updateID == position else { continue }
            let replay: StateSnapshot
            do { replay = try scratch.snapshot() } catch { throw CacheError(error) }
            defer { replay.close() }
            return try Self.compare(view, with: replay, maximumDifferences: maximumDifferences, progress: progress)
        }
        throw .verificationDidNotSettle(rounds: maximumRounds)
    }

    /// Builds the scratch file from the latest checkpoint (when the log no
    /// longer holds record 1) and the log after it, to the end of the log.
    private func buildBase(into scratch: SharedStateFile, with builder: PrivateStateBuilder) async throws(CacheError) -> UInt64 {
        let datastore = cache.datastore
        var checkpoint: CheckpointInfo?
        do {
            if try await datastore.firstRetainedUpdateID() > 1 {
                checkpoint = try await datastore.latestCheckpoint()
            }
        } catch {
            throw .datastore(error)
        }
        return try await builder.build(into: scratch, from: checkpoint, through: nil).position
    }

    /// Walks both views in key order and collects the differences.
    private static func compare(
        _ state: StateSnapshot, with replay: StateSnapshot, maximumDifferences: Int,
        progress: ((Int, Int) -> Void)?
    ) throws(CacheError) -> StateVerification {
        var result = StateVerification(updateID: state.updateID, stateKeyCount: state.count, logKeyCount: replay.count)
        func record(_ difference: StateDifference) {
            result.differenceCount += 1
            if result.differences.count < maximumDifferences { result.differences.append(difference) }
        }
        do throws(StateFileError) {
            var stateCursor = state.makeCursor()
            var replayCursor = replay.makeCursor()
            var stateEntry = try stateCursor.next()
            var replayEntry = try replayCursor.next()
            var compared = 0
            while stateEntry != nil || replayEntry != nil {
                switch (stateEntry, replayEntry) {
                case (let held?, let expected?) where held.key == expected.key:
                    if held.value != expected.value {
                        record(.valueDiffers(key: held.key, stateValue: held.value, logValue: expected.value))
                    }
                    stateEntry = try stateCursor.next()
                    replayEntry = try replayCursor.next()
                case (let held?, let expected?) where held.key.lexicographicallyPrecedes(expected.key):
                    record(.notInLog(key: held.key, stateValue: held.value))
                    stateEntry = try stateCursor.next()
                case (let held?, nil):
                    record(.notInLog(key: held.key, stateValue: held.value))
                    stateEntry = try stateCursor.next()
                case (_, let expected?):
                    record(.missingFromState(key: expected.key, logValue: expected.value))
                    replayEntry = try replayCursor.next()
                case (nil, nil):
                    break
                }
                compared += 1
                if compared % 4096 == 0 { progress?(compared, state.count) }
            }
            progress?(state.count, state.count)
        } catch {
            throw CacheError(error)
        }
        return result
    }

    /// The scratch file's name, before the process id and a random number.
    static let scratchPrefix = "whycache-verify."
}

/// What ``StateVerifier/verify(maximumDifferences:progress:)`` found.
public struct StateVerification: Sendable, Hashable {
    /// The update id at which both states were compared.
    public var updateID: UInt64
    /// The keys in the shared state.
    public var stateKeyCount: Int
    /// The keys in the replay of the log.
    public var logKeyCount: Int
    /// The first differences, in key order.
    public var differences: [StateDifference] = []
    /// How many differences there are in all.
    public var differenceCount = 0

    /// Whether the shared state equals the replay of the log.
    public var isEqual: Bool { differenceCount == 0 }
}

/// One key on which the shared state and the replay of the log disagree.
public enum StateDifference: Sendable, Hashable {
    /// The log holds the key, the shared state does not.
    case missingFromState(key: [UInt8], logValue: [UInt8])
    /// The shared state holds a key the log does not.
    case notInLog(key: [UInt8], stateValue: [UInt8])
    /// Both hold the key with different values.
    case valueDiffers(key: [UInt8], stateValue: [UInt8], logValue: [UInt8])

    /// The key.
    public var key: [UInt8] {
        switch self {
        case .missingFromState(let key, _), .notInLog(let key, _), .valueDiffers(let key, _, _): key
        }
    }
}
