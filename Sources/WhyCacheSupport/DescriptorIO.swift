import Glibc

/// Reading and writing a file descriptor that someone else opened and
/// closes (standard input and output, a pipe): the one pair of loops, shared
/// by the library and the tool, that continue after `EINTR` and, for
/// writes, after short writes. Files the library opens itself go through
/// ``FileDescriptor``, which uses these loops too.
package enum DescriptorIO {
    /// Writes all of `bytes` to `descriptor`. Returns nil when everything
    /// was written, else the `errno` of the `write(2)` that failed (`EIO`
    /// when a write made no progress).
    package static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Int32? {
        guard let start = bytes.baseAddress else { return nil }
        var done = 0
        while done < bytes.count {
            // `write` reads at most `bytes.count - done` bytes from `start + done`.
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

    /// Reads the next bytes of `descriptor` into `buffer`: how many (0 at
    /// the end of the file or pipe), or the `errno` of the `read(2)` that
    /// failed.
    package static func readSome(into buffer: UnsafeMutableRawBufferPointer, from descriptor: Int32) -> Result<Int, ReadFailure> {
        guard let start = buffer.baseAddress, buffer.count > 0 else { return .success(0) }
        while true {
            // `read` fills at most `buffer.count` bytes from `start`.
            let count = read(descriptor, start, buffer.count)
            if count >= 0 { return .success(count) }
            if errno != EINTR { return .failure(ReadFailure(errno: errno)) }
        }
    }

    /// A `read(2)` that failed, with its `errno`.
    package struct ReadFailure: Error {
        /// The `errno` the read failed with.
        package var errno: Int32
    }
}
