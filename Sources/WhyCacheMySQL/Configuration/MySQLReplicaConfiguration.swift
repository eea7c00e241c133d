import WhyCache

/// The replicas a ``MySQLDatastore`` reads the log from, and when it leaves one.
///
/// A fleet scales log reads the way MySQL scales reads: every machine's
/// polls go to replicas of the primary, which keeps the writes. With
/// replicas configured, a datastore sends appends, the counter, named locks,
/// checkpoint publishing and history removal to the primary
/// (``MySQLConfiguration/endpoint``), and the reads of the log — the newest
/// id, pages of records, checkpoints — to one replica, chosen at random per
/// datastore (so a fleet spreads evenly) and kept while it is healthy.
///
/// ```swift
/// var configuration = MySQLConfiguration(endpoint: .tcp(host: "db-primary"), user: "whycache",
///                                        password: secret, database: "app", table: "flags_log")
/// configuration.replicas = MySQLReplicaConfiguration(endpoints: [.tcp(host: "db-r1"), .tcp(host: "db-r2")])
/// configuration.replicas.maximumLag = .seconds(2)
/// ```
///
/// **Leaving a replica.** A read leaves its replica for the next one in the
/// datastore's order, and after the last for the primary, when the replica
/// fails (cannot be reached, errors, or does not answer within
/// ``timeout``) or lags more than ``maximumLag``. A replica left is tried
/// again after ``retryDelay``, doubled after each further failure up to
/// ``maximumRetryDelay``.
///
/// **Measuring lag.** While it reads from a replica, the datastore reads the
/// primary's counter at most once per ``lagCheckInterval`` (one cheap
/// statement) and notes the ids its own appends received. A replica lags by
/// the age of the oldest such id it does not show yet; the measure is
/// exact to within ``lagCheckInterval``, needs no privilege on the
/// replica, and sees every cause of lag (a stopped SQL thread, a slow
/// applier, a broken link to the primary). While the primary cannot be
/// reached no lag is measured and the replica keeps serving reads.
///
/// **Consistency.** Reads through replicas can lag but never skip a record
/// and never move backwards; a datastore never reads from a replica that is
/// behind what it has already seen (its own appends included), so a writer
/// reads its own records even before they reach its replica.
/// `docs/FORMAT.md` §4.6 gives the argument.
public struct MySQLReplicaConfiguration: Sendable, Hashable {
    /// The replicas, in no particular order. Empty: every read goes to the primary.
    public var endpoints: [MySQLEndpoint]

    /// How far behind the primary a replica may be before reads leave it.
    public var maximumLag: Duration = .seconds(5)

    /// How often the primary's counter is read to measure a replica's lag
    /// while reads go to a replica.
    public var lagCheckInterval: Duration = .seconds(5)

    /// How long to wait for a replica to connect or to answer a read before
    /// the read moves on (whole seconds, at least 1; replicas have their own
    /// timeout so that a frozen replica costs a poll seconds, not the
    /// primary's ``MySQLConfiguration/readTimeout``).
    public var timeout: Duration = .seconds(2)

    /// The wait before a replica that was left is tried again.
    public var retryDelay: Duration = .seconds(1)

    /// The longest wait before a replica that keeps failing is tried again.
    public var maximumRetryDelay: Duration = .seconds(60)

    /// The most connections the datastore keeps open to each replica.
    public var poolSize: Int = 2

    /// Replicas at `endpoints`, with the default policy.
    public init(endpoints: [MySQLEndpoint] = []) {
        self.endpoints = endpoints
    }

    /// No replicas: every read goes to the primary.
    public static let none = MySQLReplicaConfiguration()

    /// Checks the values.
    func validate() throws(DatastoreError) {
        for endpoint in endpoints { try endpoint.validate() }
        guard Set(endpoints).count == endpoints.count else {
            throw .invalidConfiguration(reason: "a replica is listed twice")
        }
        guard poolSize >= 1 else { throw .invalidConfiguration(reason: "replicas.poolSize must be at least 1, not \(poolSize)") }
        for (name, value) in [("maximumLag", maximumLag), ("lagCheckInterval", lagCheckInterval), ("timeout", timeout), ("retryDelay", retryDelay)] {
            guard value > .zero else { throw .invalidConfiguration(reason: "replicas.\(name) must be positive") }
        }
        guard maximumRetryDelay >= retryDelay else {
            throw .invalidConfiguration(reason: "replicas.maximumRetryDelay must be at least retryDelay")
        }
    }
}
