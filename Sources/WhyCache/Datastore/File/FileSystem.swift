import Glibc

/// A file of the file datastore: its system calls fail with
/// ``DatastoreError/ioFailure(operation:path:errno:)``.
typealias DatastoreFile = FileDescriptor<DatastoreError>

/// The directory-level system calls of the file datastore.
enum FileSystem {
    /// Whether anything exists at `path`.
    static func exists(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0
    }

    /// Whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates the directory `path` and any missing parents.
    static func makeDirectories(_ path: String) throws(DatastoreError) {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path, !parent.isEmpty, !isDirectory(parent) {
            try makeDirectories(parent)
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw .ioFailure(operation: "mkdir", path: path, errno: errno)
        }
    }

    /// The names in the directory `path`, without `.` and `..`.
    static func contents(of path: String) throws(DatastoreError) -> [String] {
        guard let directory = opendir(path) else { throw .ioFailure(operation: "opendir", path: path, errno: errno) }
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
    static func rename(_ source: String, to destination: String) throws(DatastoreError) {
        guard systemRename(source, destination) == 0 else {
            throw .ioFailure(operation: "rename to \(destination)", path: source, errno: errno)
        }
    }

    /// Removes the file at `path`; a missing file is not an error.
    static func remove(_ path: String) throws(DatastoreError) {
        if unlink(path) != 0 && errno != ENOENT {
            throw .ioFailure(operation: "unlink", path: path, errno: errno)
        }
    }

    /// Flushes the directory `path` itself, so that files created, renamed or
    /// removed in it survive a crash of the machine.
    static func synchronizeDirectory(_ path: String) throws(DatastoreError) {
        let directory = try DatastoreFile.open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { directory.close() }
        try directory.synchronize()
    }

    /// Writes `bytes` to a new temporary file next to `path`, flushes it when
    /// `durable`, and renames it over `path`: readers see the old file or the
    /// new one, never a mix.
    static func replaceAtomically(_ path: String, with bytes: [UInt8], durable: Bool) throws(DatastoreError) {
        let temporary = FileDatastoreLayout.temporaryPath(for: path)
        let file = try DatastoreFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL)
        do {
            defer { file.close() }
            try file.write(bytes, at: 0)
            if durable { try file.synchronizeData() }
        } catch {
            try? remove(temporary)
            throw error
        }
        do {
            try rename(temporary, to: path)
        } catch {
            try? remove(temporary)
            throw error
        }
        if durable { try synchronizeDirectory(parentDirectory(of: path)) }
    }

    /// The directory that contains `path`.
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

// The C function, reachable from inside `FileSystem`, whose method shadows its name.
private func systemRename(_ source: String, _ destination: String) -> Int32 { rename(source, destination) }
