import Glibc

/// Temporary files named `<prefix><pid>.<anything>` that a process creates
/// while it works and removes when it is done: those of processes that no
/// longer exist were left by a crash and can be deleted: the scratch files
/// of rewrites, verifications, rebuilds and restores, and the tool's
/// benchmark state files and folders.
package enum AbandonedFiles {
    /// Deletes the files in `directory` whose names start with `prefix`
    /// followed by the id of a process that no longer exists. Errors are
    /// ignored: this is cleanup, and the files are found again next time.
    package static func remove(in directory: String, prefix: String) {
        for path in paths(in: directory, prefix: prefix) {
            _ = unlink(path)
        }
    }

    /// The paths of the entries in `directory` (files or folders) whose
    /// names start with `prefix` followed by the id of a process that no
    /// longer exists, and then a `.` or nothing. The tool removes the
    /// folders of killed benchmarks with it; an unreadable directory has none.
    package static func paths(in directory: String, prefix: String) -> [String] {
        let folder = directory.isEmpty ? "." : directory
        guard let stream = opendir(folder) else { return [] }
        defer { closedir(stream) }
        var paths: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "." }) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                paths.append(folder + "/" + name)
            }
        }
        return paths
    }

    /// `path` split into its directory and file name.
    package static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}
