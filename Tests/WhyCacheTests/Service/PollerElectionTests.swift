import Foundation
import Logging
import ServiceLifecycle
import Testing
@testable import WhyCache

/// The election of one poller among the caches of a state file, in one
/// process (each ``SharedCache`` opens the file on its own, as another
/// process would): who holds the lease, how it moves when the holder closes
/// or the file is replaced, and updaters that follow the poller without
/// reading the log. ``PollerElectionProcessTests`` does the same with
/// processes and SIGKILL.
@Suite struct PollerElectionTests {
    /// One cache of the file holds the lease; when it closes, another takes it.
    @Test func theCachesOfAStateFileElectOnePollerAndHandOverWhenItCloses() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let first = try CacheFixture.makeCache(directory, store)
            let second = try CacheFixture.makeCache(directory, store)
            #expect(try first.holdsPollerLease())
            #expect(try first.holdsPollerLease(), "the holder keeps it")
            #expect(try !second.holdsPollerLease())
            first.close()
            #expect(try second.holdsPollerLease())
            #expect(throws: CacheError.self) { try first.holdsPollerLease() }
        }
    }

    /// When another process replaces the file at the path, the lease moves
    /// with the file: the cache on the new file is elected while the old
    /// poller still lives, and the old poller, reopening the path, follows.
    @Test func theElectionMovesToTheFileThatReplacedTheOldOne() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            let poller = try CacheFixture.makeCache(directory, store)
            let other = try CacheFixture.makeCache(directory, store)
            #expect(try poller.holdsPollerLease())
            try other.removeStateFile()
            #expect(try other.holdsPollerLease(), "the new file's lease is free")
            #expect(try !poller.holdsPollerLease(), "the old poller moved to the new file, whose lease is taken")
            try await poller.update()
            try await other.update()
            #expect(poller.isValid() && other.isValid())
        }
    }

    /// Two updaters of one state file: the poller reads the log; the other
    /// makes no datastore call, yet its waiters and its change stream (which
    /// only a ring of this cache can wake: its poll interval is an hour) see
    /// the poller's updates. When the poller stops, the other takes over.
    @Test(.timeLimit(.minutes(5))) func aFollowerSeesThePollersUpdatesWithoutReadingTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let base = try await CacheFixture.makeStore(directory)
            let pollerStore = SwitchableDatastore(base)
            let followerStore = SwitchableDatastore(base)
            let pollerCache = try CacheFixture.makeCache(directory, pollerStore)
            let followerCache = try CacheFixture.makeCache(directory, followerStore)
            let configuration = BackgroundUpdater.Configuration(interval: .milliseconds(20))
            let poller = BackgroundUpdater(cache: pollerCache, configuration: configuration)
            let follower = BackgroundUpdater(cache: followerCache, configuration: configuration)
            let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            let pollerGroup = ServiceGroup(services: [poller], logger: logger)
            let followerGroup = ServiceGroup(services: [follower], logger: logger)
            let pollerRun = Task { try await pollerGroup.run() }
            for _ in 0..<12_000 where !poller.isPoller { try await Task.sleep(for: .milliseconds(5)) }
            #expect(poller.isPoller)
            let followerRun = Task { try await followerGroup.run() }
            defer {
                pollerRun.cancel()
                followerRun.cancel()
            }
            let changes = try followerCache.changes(pollInterval: .seconds(3_600))
            // A child task, so that the test's time limit ends it too. The
            // stream reads the log through the follower's datastore; only
            // the updater's calls are counted.
            async let seen = SwitchableDatastore.$uncounted.withValue(true) {
                var ids: [UInt64] = []
                for try await case .changed(let change) in changes {
                    ids.append(change.updateID)
                    if ids.count == 3 { break }
                }
                return ids
            }
            let callsBefore = followerStore.calls.load(ordering: .relaxed)
            var ids: [UInt64] = []
            for index in 0..<3 {
                ids.append(try await base.append(try LogRecord([.set(key: bytes("k\(index)"), value: bytes("v"))]).encoded()))
                try await follower.waitUntilApplied(through: ids[index])
                #expect(try followerCache.value(forKey: bytes("k\(index)")) == bytes("v"))
            }
            #expect(try await seen == ids)
            #expect(!follower.isPoller)
            #expect(followerStore.calls.load(ordering: .relaxed) == callsBefore, "the follower's updater made datastore calls")
            #expect(pollerStore.calls.load(ordering: .relaxed) > 0)

            // The poller stops (its cache stays open): the follower takes over.
            await pollerGroup.triggerGracefulShutdown()
            try await pollerRun.value
            #expect(!poller.isPoller)
            for _ in 0..<12_000 where !follower.isPoller { try await Task.sleep(for: .milliseconds(5)) }
            #expect(follower.isPoller)
            let next = try await base.append(try LogRecord([.set(key: bytes("after"), value: bytes("takeover"))]).encoded())
            try await follower.waitUntilApplied(through: next)
            #expect(try followerCache.value(forKey: bytes("after")) == bytes("takeover"))
            #expect(followerStore.calls.load(ordering: .relaxed) > callsBefore)
            await followerGroup.triggerGracefulShutdown()
            try await followerRun.value
        }
    }

    /// With ``BackgroundUpdater/Configuration/pollsOncePerMachine`` off,
    /// every updater polls, as before the election: both read the log.
    @Test(.timeLimit(.minutes(5))) func withTheElectionOffEveryUpdaterPolls() async throws {
        try await withTemporaryDirectory { directory in
            let base = try await CacheFixture.makeStore(directory)
            let stores = [SwitchableDatastore(base), SwitchableDatastore(base)]
            let configuration = BackgroundUpdater.Configuration(interval: .milliseconds(20), pollsOncePerMachine: false)
            let updaters = try stores.map { BackgroundUpdater(cache: try CacheFixture.makeCache(directory, $0), configuration: configuration) }
            let group = ServiceGroup(services: updaters, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            let running = Task { try await group.run() }
            let id = try await base.append(try LogRecord([.set(key: bytes("k"), value: bytes("v"))]).encoded())
            for updater in updaters { try await updater.waitUntilApplied(through: id) }
            for _ in 0..<12_000 where stores.contains(where: { $0.calls.load(ordering: .relaxed) == 0 }) {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(stores.allSatisfy { $0.calls.load(ordering: .relaxed) > 0 })
            #expect(updaters.allSatisfy { $0.isPoller })
            #expect(try updaters[0].cache.holdsPollerLease(), "nobody took the lease")
            await group.triggerGracefulShutdown()
            try await running.value
        }
    }
}
