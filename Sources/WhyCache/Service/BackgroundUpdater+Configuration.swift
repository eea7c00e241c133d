extension BackgroundUpdater {
    /// When and how often the updater runs.
    public struct Configuration: Sendable {
        /// The time between two rounds when nothing asks for one sooner.
        public var interval: Duration
        /// The longest wait after repeated failures.
        public var maximumBackoff: Duration
        /// Whether the processes that share the state file — those of one
        /// machine, in the usual deployment — elect one of them to poll the
        /// datastore, rather than each polling it. Default: true.
        ///
        /// With it on, each round first takes or keeps the state file's
        /// poller lease (docs/FORMAT.md section 1.10), a lock that the
        /// kernel releases when its holder dies or closes the file. The
        /// holder reads the log every round; in every other process a round
        /// reads the local update id from the shared file — no datastore
        /// call — and wakes the waiters and change streams of that process
        /// from it. However many processes follow a state file, the
        /// datastore then sees the log reads of one of them. Another process
        /// takes over within one interval of the poller's death.
        ///
        /// In a process that follows another's poller, ``requestUpdate()``
        /// and a new waiter start a round at once, which looks at the shared
        /// file only: a waiter returns once the poller's next round has
        /// applied its id, within about the poller's interval, where a
        /// polling updater reads the log at once. Turn this off when a
        /// process must not wait for another process's round, or when the
        /// processes of one state file need very different intervals (the
        /// poller's sets the pace for all of them); the updater then polls
        /// the datastore every round itself, and takes no part in the
        /// election. ``SharedCache/update(through:)`` works in every process
        /// either way.
        public var pollsOncePerMachine: Bool

        /// The default ``interval``: one second. `whycache-tool follow
        /// --interval` defaults to it too.
        public static let defaultInterval: Duration = .seconds(1)

        /// The default ``maximumBackoff``: thirty seconds. `whycache-tool
        /// follow --maximum-backoff` defaults to it too, so that a host's
        /// follower and its workers' updaters back off alike.
        public static let defaultMaximumBackoff: Duration = .seconds(30)

        /// A configuration with `interval` between rounds, backing off up
        /// to `maximumBackoff` (at least `interval`), polling the datastore
        /// from one process per state file unless `pollsOncePerMachine` is
        /// false.
        public init(
            interval: Duration = Configuration.defaultInterval, maximumBackoff: Duration = Configuration.defaultMaximumBackoff,
            pollsOncePerMachine: Bool = true
        ) {
            self.interval = interval
            self.maximumBackoff = max(interval, maximumBackoff)
            self.pollsOncePerMachine = pollsOncePerMachine
        }
    }
}
