import Glibc

/// Writing a whole buffer to a file descriptor: the one loop, shared by the
/// library and the tool, that continues after short writes and `EINTR`.
package enum DescriptorWriting {
    /// Writes all of `bytes` to `descriptor`. Returns nil when everything
    /// was written, else the `errno` of the `write(2)` that failed (`EIO`
    /// when a write made no progress).
    package static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Int32? {
        guard let start = bytes.baseAddress else { return nil }
        var done = 0
        while done < bytes.count {
            let count = write(descriptor, start + done, bytes.count - done)
            if count > 0 {
                done += count
            } else if count == 0 {
                return EIO
            } else if errno != EINTR {
                return errno
            }
        }
        return nil
    }
}
