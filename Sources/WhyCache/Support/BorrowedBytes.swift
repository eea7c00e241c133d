/// Calls `body` with the bytes of `bytes` as one contiguous buffer, without
/// copying when the sequence already stores them contiguously (arrays,
/// array slices, buffer pointers), and through a temporary array otherwise.
@inlinable
@inline(__always)
func withBorrowedBytes<Bytes: Sequence<UInt8>, Result>(
    _ bytes: Bytes, _ body: (UnsafeRawBufferPointer) -> Result
) -> Result {
    if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    return Array(bytes).withUnsafeBytes(body)
}
