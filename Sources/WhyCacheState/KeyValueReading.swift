import WhyCacheSupport

/// A source of values by key in a shared-state file: `SharedCache`,
/// ``SharedStateFile`` and ``StateSnapshot``.
///
/// A conforming type provides one read, ``KeyValueReading/withValue(forKeyBytes:_:)``, which
/// lends the value under a borrowed key straight from shared memory; the
/// protocol builds the other forms on it, the same for every type:
/// ``KeyValueReading/value(forKey:)`` copies the value out, ``KeyValueReading/contains(_:)`` tests for the
/// key, and the two `withValue(forKey:_:)` forms lend the value for any
/// sequence of key bytes. Every form is `@inlinable`, so a read through a
/// concrete type compiles to the same code as a call of
/// ``KeyValueReading/withValue(forKeyBytes:_:)``.
///
/// Code generic over the protocol reads a cache, a file or a pinned snapshot
/// alike:
///
/// ```swift
/// func greeting(in source: some KeyValueReading) throws -> String? {
///     try source.withValue(forKey: Array("greeting".utf8)) { value in
///         value.map { String(decoding: $0, as: UTF8.self) }
///     }
/// }
/// ```
public protocol KeyValueReading {
    /// The error a read throws: `CacheError` for a cache,
    /// ``StateFileError`` for a file or a snapshot.
    associatedtype ReadFailure: Error

    /// Calls `body` with the value under the borrowed `key` as a buffer in
    /// shared memory (no copy), or with nil when the key is absent. The
    /// buffer is valid only during the call. The fastest read: no
    /// allocation. `body` may throw a ``KeyValueReading/ReadFailure`` of its own.
    ///
    /// - Parameters:
    ///   - key: the key's bytes, 1 to ``/WhyCacheSupport/WhyCacheLimits/maximumKeyLength``.
    ///   - body: what to do with the value.
    /// - Throws: a ``KeyValueReading/ReadFailure`` for an invalid key, a damaged file or a
    ///   closed reader, or the one `body` throws.
    func withValue<Result>(
        forKeyBytes key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws(ReadFailure) -> Result
    ) throws(ReadFailure) -> Result
}

extension KeyValueReading {
    /// The value stored under `key`, or nil when the key is absent.
    ///
    /// - Throws: a ``KeyValueReading/ReadFailure`` for an empty or too long key, a damaged
    ///   file or a closed reader.
    @inlinable
    public func value(forKey key: some Sequence<UInt8>) throws(ReadFailure) -> [UInt8]? {
        try withValue(forKey: key) { $0.map { Array($0) } }
    }

    /// Whether `key` is present.
    ///
    /// - Throws: see ``KeyValueReading/value(forKey:)``.
    @inlinable
    public func contains(_ key: some Sequence<UInt8>) throws(ReadFailure) -> Bool {
        try withValue(forKey: key) { $0 != nil }
    }

    /// Calls `body` with the value under `key` as a buffer in shared memory
    /// (no copy), or with nil when the key is absent. The buffer is valid
    /// only during the call.
    ///
    /// - Throws: see ``KeyValueReading/value(forKey:)``.
    @inlinable
    public func withValue<Result>(
        forKey key: some Sequence<UInt8>, _ body: (UnsafeRawBufferPointer?) -> Result
    ) throws(ReadFailure) -> Result {
        try withBorrowedBytes(key) { bytes in
            Swift.Result { () throws(ReadFailure) in try self.withValue(forKeyBytes: bytes) { (value) throws(ReadFailure) in body(value) } }
        }.get()
    }

    /// Calls a throwing `body` with the value under `key` as a buffer in
    /// shared memory (no copy), or with nil when the key is absent. The
    /// buffer is valid only during the call.
    ///
    /// Swift infers a throwing closure's error as `any Error`, so this form
    /// throws `any Error`; a `body` that does not throw selects the form
    /// that throws ``KeyValueReading/ReadFailure`` only.
    ///
    /// - Throws: a ``KeyValueReading/ReadFailure`` (see ``KeyValueReading/value(forKey:)``), or what `body` throws.
    @inlinable
    public func withValue<Result, Failure: Error>(
        forKey key: some Sequence<UInt8>, _ body: (UnsafeRawBufferPointer?) throws(Failure) -> Result
    ) throws -> Result {
        try withValue(forKey: key) { value in Swift.Result { () throws(Failure) in try body(value) } }.get()
    }
}
