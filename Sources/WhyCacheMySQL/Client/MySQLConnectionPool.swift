import WhyCache

/// An error from a connection's work that carries the client error beneath it,
/// so that a connection can tell whether the error broke it.
protocol MySQLClientFailure: Error {
    /// The error libmariadb or the server reported.
    var clientError: MySQLClientError { get }
}

extension MySQLClientError: MySQLClientFailure {
    var clientError: MySQLClientError { self }
}

extension MySQLTransactionError: MySQLClientFailure {}

/// Up to `size` open connections to one server, lent to one task at a time.
///
/// A task borrows a connection for one unit of work (``run(retryingStale:_:)``).
/// When every connection is busy, it waits (suspended, not blocking a
/// thread) for the next one returned. Connections are opened lazily and a
/// connection that an error broke is closed and replaced by a new one on the
/// next use, which is how the datastore recovers by itself when a server
/// comes back.
final class MySQLConnectionPool: Sendable {
    /// How to connect: the server, the timeouts and the pool's size.
    let configuration: MySQLConfiguration
    /// The statements and result bytes of this pool's connections.
    let traffic = MySQLTraffic()
    private let state: Locked<State>

    private struct State: ~Copyable {
        var idle: [MySQLConnection] = []
        var open = 0
        var waiters: [CheckedContinuation<Lease, Never>] = []
        var isClosed = false
    }

    /// What a borrower gets: an idle connection, the right to open one, or
    /// the news that the pool was closed.
    private enum Lease: Sendable {
        case reuse(MySQLConnection)
        case open
        case closed
    }

    /// Creates an empty pool; connections are opened on first use.
    init(configuration: MySQLConfiguration) {
        self.configuration = configuration
        self.state = Locked(State())
    }

    /// Runs `body` on a borrowed connection, on that connection's thread.
    ///
    /// - Parameter retryingStale: When the body fails because the connection
    ///   was broken — which happens to idle connections when the server
    ///   restarted — and this returns `true` for the error, the body runs
    ///   again on another connection. Only connections that sat idle are
    ///   retried; an error on a freshly opened one is thrown.
    func run<T: Sendable, Failure: MySQLClientFailure>(
        retryingStale: @Sendable (Failure) -> Bool = { _ in true },
        _ body: @escaping @Sendable (MySQLConnection) throws(Failure) -> T
    ) async throws(MySQLPoolError<Failure>) -> T {
        while true {
            let connection: MySQLConnection
            let reused: Bool
            do throws(MySQLClientError) {
                (connection, reused) = try await checkOut()
            } catch {
                throw .connect(error)
            }
            do throws(Failure) {
                let result = try await connection.run(body)
                await checkIn(connection)
                return result
            } catch {
                await checkIn(connection)
                if reused, error.clientError.breaksConnection, retryingStale(error) { continue }
                throw .work(error)
            }
        }
    }

    /// Runs `body` in a transaction on a borrowed connection: committed when
    /// it returns, rolled back when it throws.
    ///
    /// - Parameter retryingBeforeCommit: Whether a transaction that failed
    ///   before its commit was sent (so it changed nothing) on a connection
    ///   that had gone stale runs again on another one. A failed commit is
    ///   never retried: its outcome may be unknown.
    func runTransaction<T: Sendable>(
        retryingBeforeCommit: Bool,
        _ body: @escaping @Sendable (MySQLConnection) throws(MySQLWorkError) -> T
    ) async throws(MySQLPoolError<MySQLTransactionError>) -> T {
        try await run(retryingStale: { error in
            if retryingBeforeCommit, case .beforeCommit = error { return true }
            return false
        }) { connection throws(MySQLTransactionError) -> T in
            try connection.transaction { () throws(MySQLWorkError) -> T in try body(connection) }
        }
    }

    /// Opens a connection that is not part of the pool (for a holder of a
    /// named lock, which must keep its connection for as long as it lives).
    func openDedicatedConnection() async throws(MySQLClientError) -> MySQLConnection {
        if state.withLock({ $0.isClosed }) { throw Self.closedError }
        return try await MySQLConnection.open(configuration, traffic: traffic)
    }

    // MARK: Private

    private func checkOut() async throws(MySQLClientError) -> (MySQLConnection, reused: Bool) {
        let size = configuration.poolSize
        let lease = await withCheckedContinuation { (continuation: CheckedContinuation<Lease, Never>) in
            let immediate: Lease? = state.withLock { state in
                if state.isClosed { return .closed }
                if let connection = state.idle.popLast() { return .reuse(connection) }
                if state.open < size {
                    state.open += 1
                    return .open
                }
                state.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
        switch lease {
        case .closed:
            throw Self.closedError
        case .reuse(let connection):
            return (connection, true)
        case .open:
            do throws(MySQLClientError) {
                return (try await MySQLConnection.open(configuration, traffic: traffic), false)
            } catch {
                releaseSlot()
                throw error
            }
        }
    }

    /// Returns a connection: to a waiter, to the idle list, or — when it is
    /// broken — closes it and passes its slot on.
    private func checkIn(_ connection: MySQLConnection) async {
        if connection.isBroken {
            await connection.close()
            releaseSlot()
            return
        }
        let (waiter, closed) = state.withLock { state -> (CheckedContinuation<Lease, Never>?, Bool) in
            if state.isClosed {
                state.open -= 1
                return (nil, true)
            }
            if state.waiters.isEmpty {
                state.idle.append(connection)
                return (nil, false)
            }
            return (state.waiters.removeFirst(), false)
        }
        if closed { await connection.close() }
        waiter?.resume(returning: .reuse(connection))
    }

    /// Closes the idle connections and every connection when its current
    /// work ends; borrowing fails from now on. Closing twice does nothing.
    func close() async {
        let (idle, waiters) = state.withLock { state -> ([MySQLConnection], [CheckedContinuation<Lease, Never>]) in
            state.isClosed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.resume(returning: .closed) }
        for connection in idle { await connection.close() }
    }

    /// The error borrowing reports after ``close()``.
    static let closedError = MySQLClientError(code: 0, sqlState: "HY000", message: "the datastore was closed")

    /// Gives up one open-connection slot: the next waiter may open a new
    /// connection in its place.
    private func releaseSlot() {
        let waiter = state.withLock { state -> CheckedContinuation<Lease, Never>? in
            if state.waiters.isEmpty || state.isClosed {
                state.open -= 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: .open)
    }
}

/// Why a pooled unit of work failed: no connection could be opened, or the
/// work itself failed.
enum MySQLPoolError<Failure: MySQLClientFailure>: Error {
    /// Opening a connection failed (server down, wrong password, …).
    case connect(MySQLClientError)
    /// The work failed with this error.
    case work(Failure)

    /// The client error beneath either case.
    var clientError: MySQLClientError {
        switch self {
        case .connect(let error): error
        case .work(let failure): failure.clientError
        }
    }
}
