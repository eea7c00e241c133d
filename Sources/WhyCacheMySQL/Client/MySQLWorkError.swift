import WhyCache

/// Why a unit of work on a connection failed: the connection or server
/// reported an error, or the datastore found something wrong in what it read
/// (corruption, removed history, missing tables).
enum MySQLWorkError: Error, MySQLClientFailure {
    /// libmariadb or the server reported an error.
    case client(MySQLClientError)
    /// The datastore's own finding, already in its final form.
    case datastore(DatastoreError)

    var clientError: MySQLClientError {
        switch self {
        case .client(let error): error
        case .datastore(let error): .unexpectedResult("\(error)")
        }
    }

    /// The error for the datastore's caller.
    func datastoreError(operation: String, location: String) -> DatastoreError {
        switch self {
        case .client(let error): error.datastoreError(operation: operation, location: location)
        case .datastore(let error): error
        }
    }
}

extension MySQLTransactionError {
    /// The error for the datastore's caller. An unknown outcome is
    /// `appendOutcomeUnknown` (only appends send their commit in the same
    /// request as their statements).
    func datastoreError(operation: String, location: String) -> DatastoreError {
        switch self {
        case .beforeCommit(let error): error.datastoreError(operation: operation, location: location)
        case .commitFailed(let error): error.datastoreError(operation: operation, location: location)
        case .outcomeUnknown(let error): .appendOutcomeUnknown(reason: "\(location): \(error.message) (MySQL error \(error.code))")
        }
    }
}

extension MySQLPoolError where Failure == MySQLTransactionError {
    /// The error for the datastore's caller.
    func datastoreError(operation: String, location: String) -> DatastoreError {
        switch self {
        case .connect(let error): error.datastoreError(operation: operation, location: location)
        case .work(let error): error.datastoreError(operation: operation, location: location)
        }
    }
}

extension MySQLPoolError where Failure == MySQLWorkError {
    /// The error for the datastore's caller.
    func datastoreError(operation: String, location: String) -> DatastoreError {
        switch self {
        case .connect(let error): error.datastoreError(operation: operation, location: location)
        case .work(let error): error.datastoreError(operation: operation, location: location)
        }
    }
}
