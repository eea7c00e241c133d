import Foundation
import WhyCache

/// A file the tool reads its input from, or stdin for the path `-`
/// (`--value-file`, `--from-json`, the password file), read with `read(2)`
/// and typed errors.
///
/// Not thread-safe: one reader at a time. A file it opened is closed by
/// ``close()``; stdin is never closed.
struct InputFile {
    /// The file descriptor read from.
    let descriptor: Int32
    /// The path as given (`-` for stdin), for messages.
    let path: String
    /// What the file is for, for messages ("the value file").
    let purpose: String

    /// How many bytes one `read(2)` asks for.
    static let chunkSize = 1 << 20

    /// Opens `path` for reading, or takes stdin for `-`.
    ///
    /// - Throws: ``DatastoreError/ioFailure(operation:path:errno:)`` when the file cannot be opened.
    init(_ path: String, purpose: String) throws(DatastoreError) {
        self.path = path
        self.purpose = purpose
        if path == "-" {
            descriptor = STDIN_FILENO
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw .ioFailure(operation: "open \(purpose)", path: path, errno: errno) }
        }
    }

    /// Closes the file, unless it is stdin.
    func close() {
        if descriptor != STDIN_FILENO { _ = Glibc.close(descriptor) }
    }

    /// Appends up to `count` bytes read from the file to `bytes`, and
    /// returns how many came: 0 at the end of the file.
    ///
    /// - Throws: ``DatastoreError/ioFailure(operation:path:errno:)`` when `read(2)` fails.
    func read(upTo count: Int, appendingTo bytes: inout [UInt8]) throws(DatastoreError) -> Int {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: count))
        let outcome = bytes.withUnsafeMutableBytes { buffer in
            DescriptorIO.readSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]), from: descriptor)
        }
        switch outcome {
        case .success(let got):
            bytes.removeLast(count - got)
            return got
        case .failure(let failure):
            bytes.removeLast(count)
            throw .ioFailure(operation: "read \(purpose)", path: path == "-" ? "stdin" : path, errno: failure.errno)
        }
    }

    /// Reads the rest of the file, but no more than `limit` + 1 bytes, so
    /// that a caller can tell a file longer than `limit` without holding
    /// all of it.
    ///
    /// - Throws: as ``read(upTo:appendingTo:)``.
    func readAll(limit: Int = Int.max - 1) throws(DatastoreError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count <= limit {
            let wanted = min(Self.chunkSize, limit + 1 - bytes.count)
            if try read(upTo: wanted, appendingTo: &bytes) == 0 { break }
        }
        return bytes
    }
}

/// Reading a whole small file, such as the password file.
enum FileContents {
    /// The bytes of the file at `path` (stdin for `-`); `purpose` names it in errors.
    static func read(_ path: String, purpose: String) throws(DatastoreError) -> [UInt8] {
        let file = try InputFile(path, purpose: purpose)
        defer { file.close() }
        return try file.readAll()
    }
}

/// The lines of an ``InputFile``, one at a time, with their numbers.
///
/// A line ends at a line feed, which is not part of it, nor is a carriage
/// return before it; the last line may lack its line feed. A line is held
/// whole in memory, however long.
struct LineReader {
    private let file: InputFile
    private var buffer: [UInt8] = []
    /// Where the next line starts in `buffer`.
    private var start = 0
    /// Where the search for the next line feed goes on in `buffer`.
    private var searched = 0
    private var atEnd = false
    /// The number of the line last returned (1 for the first).
    private(set) var lineNumber = 0

    /// Lines read from `file`.
    init(_ file: InputFile) {
        self.file = file
    }

    /// The next line, or nil at the end of the file.
    ///
    /// - Throws: ``DatastoreError/ioFailure(operation:path:errno:)`` when reading fails.
    mutating func next() throws(DatastoreError) -> ArraySlice<UInt8>? {
        while true {
            if let end = buffer[searched...].firstIndex(of: UInt8(ascii: "\n")) {
                return take(through: end, dropping: 1)
            }
            searched = buffer.count
            if atEnd {
                guard start < buffer.count else { return nil }
                return take(through: buffer.count, dropping: 0)
            }
            if start > 0 {
                // Keep only the unfinished line before reading more.
                buffer.removeFirst(start)
                searched -= start
                start = 0
            }
            if try file.read(upTo: InputFile.chunkSize, appendingTo: &buffer) == 0 { atEnd = true }
        }
    }

    /// The line from `start` to `end`, without a carriage return before
    /// `end`; the next line starts `dropping` bytes after `end`.
    private mutating func take(through end: Int, dropping: Int) -> ArraySlice<UInt8> {
        var last = end
        if last > start && buffer[last - 1] == UInt8(ascii: "\r") { last -= 1 }
        let line = buffer[start..<last]
        start = end + dropping
        searched = start
        lineNumber += 1
        return line
    }
}
