// Helpers shared by every fuzz target of Fuzz/Targets: a scratch folder,
// running the library's async API from libFuzzer's synchronous entry point,
// and the seed-writing mode of `LLVMFuzzerInitialize`.

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
@testable import WhyCache

/// A folder of this fuzzing process's own on tmpfs (`/dev/shm`, else
/// `$TMPDIR`), created on first use and deleted when the process exits
/// normally. Targets that need files (datastore directories, state files)
/// rewrite them there for every input, so that nothing one input left
/// changes how the next one runs.
enum Scratch {
    /// The folder's path.
    static let directory: String = {
        let parent = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(parent)/whycache-fuzz-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: Scratch.directory) }
        return path
    }()

    /// A path inside the folder.
    static func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// Replaces the file at `path` with `bytes`.
    static func write(_ bytes: [UInt8], to path: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(descriptor >= 0, "cannot create \(path): errno \(errno)")
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            precondition(count > 0, "cannot write \(path): errno \(errno)")
            written += count
        }
    }

    /// The bytes of the file at `path`.
    static func read(_ path: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    /// Creates the folder `path` and any missing parents.
    static func createDirectory(_ path: String) {
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Deletes the file or folder at `path`, if any (a file with one
    /// system call: most targets remove one per input).
    static func remove(_ path: String) {
        guard unlink(path) != 0, errno != ENOENT else { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Holds the result of an async operation for ``runBlocking(_:)``.
private final class ResultBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: written once by the task before the semaphore is signalled,
    // read once by the waiting thread after it.
    var value: Value?
}

/// Runs `operation` to completion and returns its result, blocking the
/// calling thread (libFuzzer's, never one of Swift's cooperative pool).
func runBlocking<Value: Sendable>(_ operation: @escaping @Sendable () async -> Value) -> Value {
    let box = ResultBox<Value>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await operation()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// The seed-writing mode: with `WHYCACHE_FUZZ_WRITE_SEEDS=DIR` in the
/// environment, a target's `LLVMFuzzerInitialize` writes the seeds that
/// `seeds` returns into DIR (one file each, named by their index) and exits
/// instead of fuzzing. The seeds are made by the library's own writers, so
/// that the committed corpus (Fuzz/Corpus) is what real files look like.
func writeSeedsIfAsked(_ seeds: () -> [[UInt8]]) {
    guard let directory = ProcessInfo.processInfo.environment["WHYCACHE_FUZZ_WRITE_SEEDS"] else { return }
    Scratch.createDirectory(directory)
    for (index, seed) in seeds().enumerated() {
        Scratch.write(seed, to: "\(directory)/seed-\(index)")
    }
    exit(0)
}

/// A record of one `set` per key/value pair, encoded as the library writes it.
func encodedRecord(_ pairs: [(String, String)]) -> [UInt8] {
    try! LogRecord(pairs.map { .set(key: Array($0.0.utf8), value: Array($0.1.utf8)) }).encoded()
}

/// The record a seed log holds at `index`: a `set` of `key/<index>`, whose
/// value is 1,500 bytes long at every fourth index (so that a log of a dozen
/// records spans several 4 KiB reads) and 5 bytes otherwise.
func seedRecord(_ index: Int) -> [UInt8] {
    encodedRecord([("key/\(index)", String(repeating: "v", count: index % 4 == 3 ? 1500 : 5))])
}

/// Writes a new file-datastore log of `count` seed records (``seedRecord(_:)``)
/// with segments of `segmentSize` bytes into `directory`, replacing what it held.
func writeSeedLog(records count: Int, segmentSize: Int, in directory: String) {
    Scratch.remove(directory)
    runBlocking {
        let store = try! FileDatastore(directory: directory, options: FileDatastoreOptions(syncPolicy: .never, segmentSize: segmentSize))
        try! await store.createIfMissing()
        for index in 0..<count { _ = try! await store.append(seedRecord(index)) }
    }
}
