import Foundation
import WhyCache

/// The tool's output: results on stdout, messages on stderr.
///
/// Everything goes through `write(2)` rather than `print`, whose stdio
/// buffer would hold lines back when stdout is a pipe and reorder them
/// against stderr. Large outputs (`keys`, `dump`, a snapshot) use a
/// ``BufferedOutput``.
enum ToolOutput {
    /// Writes `text` and a line break to stdout at once.
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes `whycache-tool: <text>` and a line break to stderr.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data("whycache-tool: \(text)\n".utf8))
    }

    /// Whether file descriptor `descriptor` is a terminal.
    static func isTerminal(_ descriptor: Int32) -> Bool {
        isatty(descriptor) == 1
    }
}

/// Bytes gathered into 64 KiB writes to one file descriptor.
///
/// Not thread-safe: one writer at a time.
final class BufferedOutput {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private let capacity: Int

    /// A buffer in front of `descriptor` (stdout by default).
    init(descriptor: Int32 = STDOUT_FILENO, capacity: Int = 64 << 10) {
        self.descriptor = descriptor
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    /// Appends `bytes`, writing the buffer out when it is full.
    func write(_ bytes: some Sequence<UInt8>) throws(BufferedOutputError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { try flush() }
    }

    /// Appends the UTF-8 of `text`.
    func write(_ text: String) throws(BufferedOutputError) {
        try write(text.utf8)
    }

    /// Writes out everything buffered.
    func flush() throws(BufferedOutputError) {
        if let code = buffer.withUnsafeBytes({ DescriptorIO.writeAll($0, to: descriptor) }) {
            throw BufferedOutputError(errno: code)
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Writing the tool's output failed.
struct BufferedOutputError: Error, CustomStringConvertible {
    /// The `write(2)` error.
    var errno: Int32

    var description: String { "cannot write the output: \(SystemCallError.describe(errno: errno))" }
}
