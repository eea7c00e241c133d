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
            FileSystem<SystemCallError>.removeLeftover(path)
        }
    }

    /// A new path `<prefix><pid>.<random>` for a temporary file or folder of
    /// this process: the name ``remove(in:prefix:)`` recognizes once the
    /// process is gone. `prefix` may start with a directory.
    package static func temporaryPath(prefix: String) -> String {
        "\(prefix)\(Processes.currentID).\(UInt64.random(in: 1...UInt64.max))"
    }

    /// The paths of the entries in `directory` (files or folders) whose
    /// names start with `prefix` followed by the id of a process that no
    /// longer exists, and then a `.` or nothing. The tool removes the
    /// folders of killed benchmarks with it; an unreadable directory has none.
    package static func paths(in directory: String, prefix: String) -> [String] {
        let folder = directory.isEmpty ? "." : directory
        let names = (try? FileSystem<SystemCallError>.contents(of: folder)) ?? []
        var paths: [String] = []
        for name in names {
            guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "." }) else { continue }
            if Processes.isGone(pid) {
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
