import CWhyCacheSupport
import Glibc
import WhyCacheSupport

// Discarding and replacing a state file under the processes that read it.
extension SharedStateFile {
    /// Discards the state file at `path`: marks it retired, so that processes
    /// that still have it open can notice (``isRetired``), and unlinks it.
    /// Those processes keep reading the old contents safely until they reopen.
    /// Removing a file that does not exist is not an error.
    ///
    /// Every file this unlinks is marked first, even when other processes
    /// replace the file at `path` at the same moment: the file at the path is
    /// marked, then moved aside by `rename` (which takes whatever file the
    /// path names at that instant), and a file moved aside that was not the
    /// one marked is marked too before it is unlinked. A remover that dies
    /// after marking leaves a retired file at the path; whoever opens it next
    /// finds it retired and finishes the removal.
    public static func remove(at path: String) throws(StateFileError) {
        markRetired(at: path)
        let aside = AbandonedFiles.temporaryPath(prefix: "\(path).removing.")
        guard try StateFileSystem.renameIfPresent(path, to: aside) else { return }
        markRetired(at: aside)
        try StateFileSystem.remove(aside)
    }

    /// Puts the state file at `replacement` in place of the one at `path`,
    /// atomically, and marks the file it displaces retired, so that the
    /// processes that have that one open move to the new file at their next
    /// reopen check (``isRetired``). The displaced file is then unlinked.
    ///
    /// The file at `path` is marked first, then exchanged with `replacement`
    /// in one `renameat2(RENAME_EXCHANGE)`, and the file that the exchange
    /// displaced — the one marked, or one that a concurrent install put there
    /// in between — is marked too before it is unlinked. When nothing is at
    /// `path`, a plain `rename` moves the replacement in. An installer that
    /// dies after marking leaves a retired file at `path`, which the next
    /// opener removes (see ``remove(at:)``).
    ///
    /// - Throws: ``StateFileError/systemCallFailed(call:path:errno:)``.
    public static func install(_ replacement: String, at path: String) throws(StateFileError) {
        markRetired(at: path)
        guard try StateFileSystem.exchangeIfBothPresent(replacement, path) else {
            try StateFileSystem.rename(replacement, to: path)
            return
        }
        markRetired(at: replacement)
        try StateFileSystem.remove(replacement)
    }

    /// What ``SharedStateFile/install(_:at:unlessNewerThan:requiringPrefixes:)`` did.
    package enum GuardedInstallOutcome: Sendable, Hashable {
        /// The replacement is now the file at the path.
        case installed
        /// The file at the path holds an initialized state at this newer
        /// update id; it was kept and the replacement was left where it is.
        case keptNewer(updateID: UInt64)
        /// The file at the path subscribes to other key prefixes (these); it
        /// was kept and the replacement was left where it is.
        case keptOtherPrefixes([[UInt8]])
    }

    /// Installs the state file at `replacement` at `path` (as
    /// ``install(_:at:)``) unless the state file there is initialized and at
    /// an update id above `updateID` (when given): the readers of `path` then
    /// never move backwards, even when several processes install at once.
    /// With `prefixes`, a usable file at `path` that subscribes to other
    /// prefixes (canonical form) is kept too.
    ///
    /// The check and the exchange happen while this process holds the
    /// writer lock of the file at `path`, so nobody commits to it in
    /// between; and a file found retired once the lock is held (another
    /// process installed over it meanwhile) is let go and the file now at
    /// `path` is checked instead. A missing or unusable file at `path` is
    /// replaced. Blocks while another process holds the writer lock: call it
    /// off the cooperative thread pool.
    ///
    /// - Throws: ``StateFileError`` when the file at `path` is not a state
    ///   file (it is never replaced) or the exchange fails.
    package static func install(
        _ replacement: String, at path: String, unlessNewerThan updateID: UInt64?, requiringPrefixes prefixes: [[UInt8]]? = nil
    ) throws(StateFileError) -> GuardedInstallOutcome {
        while true {
            let current: SharedStateFile
            do {
                guard let file = try openIfExists(at: path) else {
                    try install(replacement, at: path)
                    return .installed
                }
                current = file
            } catch {
                guard error.marksUnusableStateFile else { throw error }
                try install(replacement, at: path)
                return .installed
            }
            let lock: WriteTransaction
            do {
                lock = try current.beginWrite()
            } catch {
                // Damaged beyond what opening checks: replaced like any unusable file.
                guard error.marksUnusableStateFile else { throw error }
                try install(replacement, at: path)
                return .installed
            }
            defer { lock.abandon() }
            if current.isRetired { continue }
            if let prefixes, current.subscribedPrefixes != prefixes {
                return .keptOtherPrefixes(current.subscribedPrefixes)
            }
            if let updateID, lock.isInitialized && lock.baseUpdateID > updateID {
                return .keptNewer(updateID: lock.baseUpdateID)
            }
            try install(replacement, at: path)
            return .installed
        }
    }

    /// Sets the retired mark of the state file at `path`, if it is one.
    private static func markRetired(at path: String) {
        guard let file = try? StateFileDescriptor.open(path, flags: O_RDWR) else { return }
        defer { file.close() }
        guard hasStateFileSignature(file) else { return }
        var one: [UInt8] = []
        one.appendLittleEndian(UInt64(1))
        try? file.write(one, at: FileLayout.retiredOffset)
    }

    /// Whether this file was discarded or replaced by ``remove(at:)``; a
    /// process that sees this should reopen the path.
    public var isRetired: Bool {
        mapped.atomicWord(at: FileLayout.retiredOffset).load(ordering: .relaxed) != 0
    }

    /// Marks this file as retired without unlinking it (used when another file
    /// replaces it by rename).
    public func markRetired() {
        mapped.atomicWord(at: FileLayout.retiredOffset).store(1, ordering: .sequentiallyConsistent)
    }
}
