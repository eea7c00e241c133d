import Glibc

/// Restores a snapshot into a shared-state file, replacing the file at the
/// state path only once the whole snapshot was read and checked.
///
/// The snapshot is streamed into a new state file next to the state path,
/// named `<state path>.restoring.<pid>.<random>`, which nobody else opens:
/// its entries are inserted in key order in transactions of bounded size,
/// and the last one sets the snapshot's update id and marks the state
/// initialized (built from a change log). Only after the trailer checked out
/// (checksum, key count, nothing after it) is the file installed at the
/// state path with ``/WhyCacheState/SharedStateFile/install(_:at:)``, which marks the file
/// it displaces retired: processes that have that file open keep reading its
/// consistent state and move to the new file at their next update.
///
/// On any error the temporary file is deleted and the file at the state
/// path is left as it was. Temporary files that killed processes left are
/// deleted by the next restore next to the same path.
///
/// The state never moves backwards by accident: when the file at the state
/// path is a valid, initialized state at a newer update id than the
/// snapshot, the restore is refused (checked before the input is read
/// beyond the header, and again under that file's writer lock just before
/// the install) unless ``replacesNewerState`` is set. A missing file, and a
/// state file that cannot be used (damaged, of another format version, not
/// durable across a restart), are simply replaced; a file that is not a state
/// file is never replaced.
///
/// The keys a file keeps never change by accident either: the restored file
/// subscribes to the prefixes the snapshot's header lists
/// (``SnapshotHeader/prefixes``, ``/WhyCacheState/SharedStateFile/subscribedPrefixes``), and
/// a snapshot whose prefixes differ from those of the usable state file at
/// the path, or from non-empty ``/WhyCacheState/SharedStateFile/Options/subscribedPrefixes``
/// in ``options``, is refused with
/// ``SnapshotError/subscriptionMismatch(snapshotPrefixes:statePrefixes:)``
/// (checked before the entries are read, and again just before the install).
///
/// ```swift
/// let summary = try SnapshotRestorer()
///     .restore(from: SnapshotStreams.reading(from: STDIN_FILENO), at: "/dev/shm/myapp.whycache")
/// ```
public struct SnapshotRestorer: Sendable {
    /// The options of the new state file (size limit, reader slots,
    /// durability, permissions). ``/WhyCacheState/SharedStateFile/Options/createIfMissing``
    /// is ignored: the restore always creates its file. The new file
    /// subscribes to the snapshot's prefixes; non-empty
    /// ``/WhyCacheState/SharedStateFile/Options/subscribedPrefixes`` say which prefixes the
    /// snapshot must hold (in any order: they are compared in canonical form).
    public var options: SharedStateFile.Options
    /// Whether a state newer than the snapshot is replaced too, moving its
    /// readers back to the snapshot's update id. Default: false, which
    /// refuses with ``SnapshotError/stateIsNewer(stateUpdateID:snapshotUpdateID:)``.
    public var replacesNewerState: Bool
    /// A transaction is committed once it holds this many keys...
    var maximumKeysPerTransaction = BatchedWriter.maximumKeysPerTransaction
    /// ...or this many key and value bytes.
    var maximumBytesPerTransaction = BatchedWriter.maximumBytesPerTransaction

    /// What a restore's temporary file name adds to the state path, before
    /// the process id and a random number.
    static let temporaryMarker = ".restoring."

    /// A restorer with the given settings.
    public init(options: SharedStateFile.Options = SharedStateFile.Options(), replacingNewerState: Bool = false) {
        self.options = options
        self.replacesNewerState = replacingNewerState
    }

    /// Reads the snapshot in `source` (plain or gzip) and installs it as the
    /// state file at `statePath`.
    ///
    /// Waits for the writer lock of the file at `statePath` just before the
    /// install, so do not call it while this thread holds a write
    /// transaction on that file.
    ///
    /// - Parameters:
    ///   - source: the snapshot.
    ///   - statePath: the state file to replace (or create).
    ///   - progress: called after each buffer of input and at the end.
    /// - Returns: the snapshot's header and sizes.
    /// - Throws: every error of ``SnapshotReader``;
    ///   ``SnapshotError/stateIsNewer(stateUpdateID:snapshotUpdateID:)``;
    ///   ``SnapshotError/subscriptionMismatch(snapshotPrefixes:statePrefixes:)``;
    ///   ``SnapshotError/stateFile(_:)`` when the new file cannot be built
    ///   or installed, or the path holds a file that is not a state file.
    @discardableResult
    public func restore(
        from source: SnapshotSource, at statePath: String, progress: ((SnapshotProgress) -> Void)? = nil
    ) throws(SnapshotError) -> SnapshotSummary {
        try withoutActuallyEscaping(source) { (source) throws(SnapshotError) in
            let reader = try SnapshotReader(source: source, progress: progress)
            // Refuse early, before reading what may be gigabytes.
            let requested = KeyPrefixes.canonical(options.subscribedPrefixes)
            if !requested.isEmpty {
                try Self.refuseOtherPrefixes(requested, than: reader.header)
            }
            if let current = try Self.openCurrent(at: statePath) {
                try Self.refuseOtherPrefixes(current.subscribedPrefixes, than: reader.header)
                let view = try SnapshotError.wrapping { () throws(StateFileError) in try current.snapshot() }
                defer { view.close() }
                try refuseIfNewer(stateUpdateID: view.updateID, isInitialized: view.isInitialized, than: reader.header)
            }
            let (directory, name) = AbandonedFiles.split(statePath)
            AbandonedFiles.remove(in: directory, prefix: name + Self.temporaryMarker)
            let temporary = AbandonedFiles.temporaryPath(prefix: statePath + Self.temporaryMarker)
            do throws(SnapshotError) {
                try build(temporary, from: reader)
                try install(temporary, at: statePath, header: reader.header)
            } catch {
                FileSystem<SystemCallError>.removeLeftover(temporary)
                throw error
            }
            return reader.summary
        }
    }

    /// Creates the state file at `path` and fills it with the entries of
    /// `reader`; the last transaction, committed only after the reader
    /// checked the trailer, carries the update id and the initialized mark.
    private func build(_ path: String, from reader: SnapshotReader) throws(SnapshotError) {
        var options = self.options
        options.createIfMissing = true
        // Every entry lies under these (the reader checks each one).
        options.subscribedPrefixes = reader.header.prefixes
        let file = try SnapshotError.wrapping { () throws(StateFileError) in try SharedStateFile.open(at: path, options: options) }
        let writer = try SnapshotError.wrapping { () throws(StateFileError) in
            try BatchedWriter(file: file, maximumKeys: maximumKeysPerTransaction, maximumBytes: maximumBytesPerTransaction)
        }
        do throws(SnapshotError) {
            while try reader.next({ (key, value) throws(SnapshotError) -> Void in
                try SnapshotError.wrapping { () throws(StateFileError) -> Void in try writer.setValue(bytes: value, forKeyBytes: key) }
            }) != nil {}
        } catch {
            writer.abandon()
            throw error
        }
        let header = reader.header
        try SnapshotError.wrapping { () throws(StateFileError) -> Void in
            try writer.finish(updateID: header.updateID, isInitialized: true, appliedRecordChecksum: nil)
        }
    }

    /// Puts the file at `temporary` in place of the one at `statePath`,
    /// holding the writer lock of the file it replaces (if that is a usable
    /// state file) while checking its update id once more and installing,
    /// so that no commit to it comes between the check and the install.
    private func install(_ temporary: String, at statePath: String, header: SnapshotHeader) throws(SnapshotError) {
        let outcome = try SnapshotError.wrapping { () throws(StateFileError) in
            try SharedStateFile.install(
                temporary, at: statePath, unlessNewerThan: replacesNewerState ? nil : header.updateID, requiringPrefixes: header.prefixes)
        }
        switch outcome {
        case .installed:
            return
        case .keptNewer(let updateID):
            throw .stateIsNewer(stateUpdateID: updateID, snapshotUpdateID: header.updateID)
        case .keptOtherPrefixes(let prefixes):
            throw .subscriptionMismatch(snapshotPrefixes: header.prefixes, statePrefixes: prefixes)
        }
    }

    /// Throws ``SnapshotError/stateIsNewer(stateUpdateID:snapshotUpdateID:)``
    /// when an initialized state at `stateUpdateID` would move backwards to
    /// the snapshot's update id and that is not allowed. A state that was
    /// never initialized holds nothing of a log, whatever its update id.
    private func refuseIfNewer(stateUpdateID: UInt64, isInitialized: Bool, than header: SnapshotHeader) throws(SnapshotError) {
        guard isInitialized, stateUpdateID > header.updateID, !replacesNewerState else { return }
        throw .stateIsNewer(stateUpdateID: stateUpdateID, snapshotUpdateID: header.updateID)
    }

    /// Throws ``SnapshotError/subscriptionMismatch(snapshotPrefixes:statePrefixes:)``
    /// unless the snapshot holds exactly the keys under `prefixes` (canonical).
    private static func refuseOtherPrefixes(_ prefixes: [[UInt8]], than header: SnapshotHeader) throws(SnapshotError) {
        guard prefixes == header.prefixes else {
            throw .subscriptionMismatch(snapshotPrefixes: header.prefixes, statePrefixes: prefixes)
        }
    }

    /// The state file at `path`, or nil when there is none or it is a state
    /// file that cannot be used, which a restore simply replaces.
    ///
    /// - Throws: ``SnapshotError/stateFile(_:)`` for a file that is not a
    ///   state file (it is never replaced) and for other failures.
    private static func openCurrent(at path: String) throws(SnapshotError) -> SharedStateFile? {
        do throws(StateFileError) {
            return try SharedStateFile.openIfExists(at: path)
        } catch {
            guard error.marksUnusableStateFile else { throw .stateFile(error) }
            return nil
        }
    }
}
