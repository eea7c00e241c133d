import Foundation
import Testing
import WhyCache

/// One poller per machine, with real processes: `cache-follow` helpers run
/// a ``BackgroundUpdater`` each on one state file, and count the datastore
/// calls their updater makes.
@Suite(.serialized) struct PollerElectionProcessTests {
    /// A `cache-follow` process and every stdout line read from it so far.
    final class Follower {
        let helper: HelperProcess
        private var lines: [String] = []

        init(store: String, state: String, intervalMilliseconds: Int) throws {
            helper = try HelperProcess(["cache-follow", store, state, "\(intervalMilliseconds)"], commands: true)
        }

        /// The first line, read before or now, that satisfies `predicate`;
        /// nil when the output ends first.
        func line(where predicate: (String) -> Bool) -> String? {
            if let line = lines.first(where: predicate) { return line }
            while let line = helper.readLine() {
                lines.append(line)
                if predicate(line) { return line }
            }
            return nil
        }

        /// The ids of the `changed ID` lines read so far, in order.
        var changes: [UInt64] {
            lines.compactMap { $0.hasPrefix("changed ") ? UInt64($0.dropFirst("changed ".count)) : nil }
        }

        /// Asks for the status and returns the rounds ended, whether the last
        /// polled, and the updater's datastore calls; nil when it does not answer.
        func status(_ tag: String) throws -> (rounds: Int, polled: Bool, calls: Int)? {
            try helper.send(line: "status \(tag)")
            let words = line { $0.hasPrefix("status \(tag) ") }?.split(separator: " ") ?? []
            guard words.count == 5, let rounds = Int(words[2]), let calls = Int(words[4]) else { return nil }
            return (rounds, words[3] == "poller", calls)
        }

        /// Waits until the process has applied `updateID` and its change
        /// stream has delivered it; false when its output ends first.
        func waitUntilApplied(through updateID: UInt64) throws -> Bool {
            try helper.send(line: "wait \(updateID)")
            return line { $0 == "applied \(updateID)" } != nil && line { $0 == "changed \(updateID)" } != nil
        }

        /// The lines that report errors (`stream-error …`, `wait-error …`), for messages.
        var errors: [String] { lines.filter { $0.contains("-error ") } }
    }

    /// Eight processes follow one state file at 50 ms: exactly one reads the
    /// datastore and the others none, yet every process's waiter and change
    /// stream sees every record. The poller is killed with SIGKILL: a
    /// survivor becomes the poller within two of its rounds, and the others,
    /// still reading nothing, see the records written after the takeover.
    @Test(.timeLimit(.minutes(5))) func oneProcessPollsForAllAndAnotherTakesOverWhenItIsKilled() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await CacheFixture.makeStore(directory)
            try await Self.oneProcessPollsForAll(store: store, storeSpec: directory + "/log", directory: directory)
        }
    }

    /// The body of ``oneProcessPollsForAllAndAnotherTakesOverWhenItIsKilled()``
    /// for any datastore the helper opens from `storeSpec`. `whilePolling`
    /// runs while the first poller polls and nothing is written, with the
    /// poller and a function that reads its rounds ended so far.
    static func oneProcessPollsForAll(
        store: any Datastore, storeSpec: String, directory: String,
        whilePolling: (_ roundsOfThePoller: () throws -> Int) async throws -> Void = { _ in }
    ) async throws {
        do {
            let state = directory + "/state"
            let followers = try (0..<8).map { _ in try Follower(store: storeSpec, state: state, intervalMilliseconds: 50) }
            // A process that never answers is killed, so that no read below
            // blocks for ever: its output ends and the test fails.
            let helpers = followers.map(\.helper)
            let watchdog = DispatchWorkItem { for helper in helpers { helper.send(SIGKILL) } }
            DispatchQueue.global().asyncAfter(deadline: .now() + 240, execute: watchdog)
            defer {
                watchdog.cancel()
                for follower in followers where follower.helper.process.isRunning { follower.helper.send(SIGKILL) }
            }

            // Each process's first round takes the free lease or finds it taken.
            let firstRoles = followers.map { $0.line { $0.hasPrefix("round 1 ") } }
            try #require(firstRoles.allSatisfy { $0 != nil }, "\(firstRoles)")
            let pollers = firstRoles.indices.filter { firstRoles[$0]?.hasPrefix("round 1 poller ") == true }
            try #require(pollers.count == 1, "first rounds: \(firstRoles)")
            let killed = pollers[0]

            var ids: [UInt64] = []
            for index in 0..<5 {
                ids.append(try await store.append(try LogRecord([.set(key: bytes("k\(index)"), value: bytes("v"))]).encoded()))
            }
            for (index, follower) in followers.enumerated() {
                #expect(try follower.waitUntilApplied(through: ids[4]), "process \(index) did not see update \(ids[4]): \(follower.errors)")
                #expect(follower.changes == ids, "process \(index)'s change stream")
            }
            var probes = 0
            try await whilePolling {
                probes += 1
                return try #require(try followers[killed].status("probe\(probes)")).rounds
            }
            let before = try followers.map { try $0.status("before") }
            for (index, status) in before.enumerated() {
                let status = try #require(status, "process \(index) did not answer")
                #expect(status.polled == (index == killed), "process \(index)")
                if index == killed {
                    #expect(status.calls > 0, "the poller read the log")
                } else {
                    #expect(status.calls == 0, "process \(index) follows but made \(status.calls) datastore calls")
                }
            }

            followers[killed].helper.send(SIGKILL)
            #expect(await followers[killed].helper.finish().status == -SIGKILL)
            let survivors = followers.indices.filter { $0 != killed }
            // Rounds ended by each survivor once the poller was gone: the
            // round after the next one starts after its death.
            var roundsAtDeath: [Int: Int] = [:]
            for index in survivors { roundsAtDeath[index] = try #require(try followers[index].status("dead")?.rounds) }
            var takeover: Int?
            for attempt in 0..<12_000 where takeover == nil {
                for index in survivors where takeover == nil {
                    if try #require(try followers[index].status("check\(attempt)")).polled { takeover = index }
                }
                if takeover == nil { usleep(10_000) }
            }
            let poller = try #require(takeover, "no survivor became the poller")
            let becamePoller = try #require(followers[poller].line { $0.hasPrefix("round ") && $0.contains(" poller ") })
            let round = try #require(Int(becamePoller.split(separator: " ")[1]))
            #expect(round <= roundsAtDeath[poller, default: 0] + 2, "took over at round \(round), after \(roundsAtDeath)")

            for index in 5..<10 {
                ids.append(try await store.append(try LogRecord([.set(key: bytes("k\(index)"), value: bytes("w"))]).encoded()))
            }
            for index in survivors {
                #expect(try followers[index].waitUntilApplied(through: ids[9]), "process \(index) did not see update \(ids[9]): \(followers[index].errors)")
                #expect(followers[index].changes == ids, "process \(index)'s change stream")
            }
            for index in survivors {
                let status = try #require(try followers[index].status("after"), "process \(index) did not answer")
                #expect(status.polled == (index == poller), "process \(index)")
                if index == poller {
                    #expect(status.calls > 0, "the new poller read the log")
                } else {
                    #expect(status.calls == 0, "process \(index) follows but made \(status.calls) datastore calls")
                }
            }
            for index in survivors {
                try followers[index].helper.send(line: "quit")
                let result = await followers[index].helper.finish()
                #expect(result.status == 0, "process \(index): \(result.errors)")
            }
        }
    }
}
