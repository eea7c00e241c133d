/// Calls `body` with the bytes of `bytes` as one contiguous buffer, without
/// copying when the sequence already stores them contiguously (arrays,
/// array slices, buffer pointers), and through a temporary array otherwise.
@inlinable
@inline(__always)
package func withBorrowedBytes<Bytes: Sequence<UInt8>, Result>(
    _ bytes: Bytes, _ body: (UnsafeRawBufferPointer) -> Result
) -> Result {
    if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    return Array(bytes).withUnsafeBytes(body)
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a body that throws a typed error, which the
    /// standard library's rethrowing form turns into `any Error`.
    package func withUnsafeBytesTyped<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withUnsafeBytes { bytes in Swift.Result { () throws(Failure) in try body(bytes) } }.get()
    }

    /// `withUnsafeMutableBytes` for a body that throws a typed error.
    package mutating func withUnsafeMutableBytesTyped<Result, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withUnsafeMutableBytes { bytes in Swift.Result { () throws(Failure) in try body(bytes) } }.get()
    }
}
