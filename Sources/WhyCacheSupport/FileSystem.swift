import CWhyCacheSupport
import Glibc

/// The system calls on paths rather than open files (directories, names,
/// links) that every layer makes, each failing with the layer's own error
/// like a ``FileDescriptor`` does: `Failure` is the datastore's error in the
/// file datastore, ``SystemCallError`` itself where a failure is only
/// logged or ignored (the cleanup of temporary files).
package enum FileSystem<Failure: SystemCallFailure> {
    /// Whether anything exists at `path`.
    package static func exists(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0
    }

    /// Whether `path` is a directory.
    package static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates the directory `path` and any missing parents.
    package static func makeDirectories(_ path: String) throws(Failure) {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path, !parent.isEmpty, !isDirectory(parent) {
            try makeDirectories(parent)
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw failure("mkdir", path)
        }
    }

    /// The names in the directory `path`, without `.` and `..`.
    package static func contents(of path: String) throws(Failure) -> [String] {
        guard let directory = opendir(path) else { throw failure("opendir", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            // `d_name` is a fixed-size, NUL-terminated C array inside the entry.
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Atomically replaces `destination` with `source`.
    package static func rename(_ source: String, to destination: String) throws(Failure) {
        guard systemRename(source, destination) == 0 else { throw failure("rename to \(destination)", source) }
    }

    /// Renames `source` to `destination`, replacing it; false when nothing
    /// is at `source`.
    package static func renameIfPresent(_ source: String, to destination: String) throws(Failure) -> Bool {
        guard systemRename(source, destination) == 0 else {
            if errno == ENOENT { return false }
            throw failure("rename to \(destination)", source)
        }
        return true
    }

    /// Exchanges the files at `first` and `second` atomically
    /// (`renameat2(RENAME_EXCHANGE)`); false when either does not exist.
    package static func exchangeIfBothPresent(_ first: String, _ second: String) throws(Failure) -> Bool {
        guard whycache_exchange_paths(first, second) == 0 else {
            if errno == ENOENT { return false }
            throw failure("renameat2", second)
        }
        return true
    }

    /// Removes the file at `path`; a missing file is not an error.
    package static func remove(_ path: String) throws(Failure) {
        if unlink(path) != 0 && errno != ENOENT {
            throw failure("unlink", path)
        }
    }

    /// Flushes the directory `path` itself, so that files created, renamed or
    /// removed in it survive a crash of the machine.
    package static func synchronizeDirectory(_ path: String) throws(Failure) {
        let directory = try FileDescriptor<Failure>.open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { directory.close() }
        try directory.synchronize()
    }

    /// The directory that contains `path`.
    package static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The error of `call` on `path` failing with the current `errno`.
    private static func failure(_ call: String, _ path: String) -> Failure {
        Failure(systemCall: SystemCallError(call: call, path: path, errno: errno))
    }
}

extension FileSystem where Failure == SystemCallError {
    /// Removes the file at `path` if there is one, and reports nothing: for
    /// the temporary file of an operation that failed or finished, where a
    /// failure to remove it must not hide the operation's own outcome (an
    /// ``AbandonedFiles`` sweep finds it later).
    package static func removeLeftover(_ path: String) {
        try? remove(path)
    }
}

// The C function, reachable from inside `FileSystem`, whose method shadows its name.
private func systemRename(_ source: String, _ destination: String) -> Int32 { rename(source, destination) }
