import Glibc

extension SharedCache {
    /// Replaces the state file by one built from the datastore's latest
    /// checkpoint, for a state whose next record the log no longer holds
    /// (history was rewritten past it).
    ///
    /// The new file is built next to the state file, under a temporary name
    /// that holds this process's id, from the checkpoint's payloads and the
    /// log after it (``PrivateStateBuilder``), in transactions that nobody
    /// else sees. It is then put in place with
    /// ``/WhyCacheState/SharedStateFile/install(_:at:)``, which marks the displaced file
    /// retired: readers in this process switch at once (through the holder),
    /// readers elsewhere at their next update. Until then every reader keeps
    /// reading the old state, which stays consistent. The caller then applies
    /// the log after the checkpoint as usual.
    ///
    /// Two processes that rebuild at once both build a correct file; the
    /// install keeps whichever is further along the log
    /// (``/WhyCacheState/SharedStateFile/install(_:at:unlessNewerThan:)``), so that readers
    /// never move backwards, and the other process switches to it. A process
    /// killed while building leaves its temporary file, which the next
    /// rebuild on this machine deletes.
    ///
    /// - Parameter firstRetained: The oldest record the log still holds.
    /// - Throws: ``CacheError/historyRewritten(localUpdateID:firstRetainedUpdateID:)``
    ///   when no checkpoint reaches `firstRetained - 1`; datastore, state file
    ///   and corrupt-record errors. The current file is untouched on failure.
    func rebuildFromCheckpoint(localUpdateID: UInt64, firstRetained: UInt64) async throws(CacheError) {
        let checkpoint: CheckpointInfo?
        do { checkpoint = try await datastore.latestCheckpoint() } catch { throw .datastore(error) }
        guard let checkpoint, checkpoint.leavesNoGap(beforeFirstRetained: firstRetained) else {
            throw .historyRewritten(localUpdateID: localUpdateID, firstRetainedUpdateID: firstRetained)
        }
        try await rebuild(from: checkpoint)
    }

    /// Replaces the state file by one built from the log, for a state whose
    /// last applied record, `updateID`, the log no longer holds as it was
    /// (``CacheError/logChanged(updateID:)``): from the latest checkpoint
    /// when the log holds everything after it, else from the log's first
    /// record when the log still starts there. Installed as
    /// ``rebuildFromCheckpoint(localUpdateID:firstRetained:)`` installs.
    ///
    /// - Throws: ``CacheError/logChanged(updateID:)`` when neither is
    ///   possible; datastore, state file and corrupt-record errors. The
    ///   current file is untouched on failure.
    func rebuildAfterLogChanged(updateID: UInt64) async throws(CacheError) {
        let checkpoint: CheckpointInfo?
        let firstRetained: UInt64
        do {
            checkpoint = try await datastore.latestCheckpoint()
            firstRetained = try await datastore.firstRetainedUpdateID()
        } catch {
            throw .datastore(error)
        }
        if let checkpoint, checkpoint.leavesNoGap(beforeFirstRetained: firstRetained) {
            try await rebuild(from: checkpoint)
        } else if firstRetained <= 1 {
            try await rebuild(from: nil)
        } else {
            throw .logChanged(updateID: updateID)
        }
    }

    /// Builds a state file from `checkpoint` (nil: from an empty state) and
    /// the log after it, and installs it at the state path (see
    /// ``rebuildFromCheckpoint(localUpdateID:firstRetained:)``).
    private func rebuild(from checkpoint: CheckpointInfo?) async throws(CacheError) {
        removeAbandonedRebuilds()
        let temporary = AbandonedFiles.temporaryPath(prefix: statePath + Self.rebuildMarker)
        do throws(CacheError) {
            let file = try Self.openStateFile(at: temporary, configuration: configuration)
            // The log after the checkpoint goes in before the file is
            // installed: readers never see the checkpoint's state alone, which
            // may lack records that a compacting datastore replaced by later ones.
            let built = try await PrivateStateBuilder(datastore: datastore, configuration: configuration)
                .build(into: file, from: checkpoint, through: nil)
            // Another process may have rebuilt too and installed a newer
            // state; the readers of the path must not move back from it.
            let statePath = self.statePath
            let outcome: SharedStateFile.GuardedInstallOutcome
            do {
                outcome = try await lockWaiter.run { () throws(StateFileError) -> SharedStateFile.GuardedInstallOutcome in
                    try SharedStateFile.install(
                        temporary, at: statePath, unlessNewerThan: built.position, requiringPrefixes: file.subscribedPrefixes)
                }
            } catch {
                throw CacheError(error)
            }
            switch outcome {
            case .installed:
                guard holder.replace(with: file) else { throw .closed(path: statePath) }
            case .keptNewer, .keptOtherPrefixes:
                // The file at the path wins; opening it reports other prefixes.
                FileSystem<SystemCallError>.removeLeftover(temporary)
                guard holder.replace(with: try Self.openStateFile(at: statePath, configuration: configuration)) else {
                    throw .closed(path: statePath)
                }
            }
        } catch {
            FileSystem<SystemCallError>.removeLeftover(temporary)
            throw error
        }
    }

    /// What a rebuild's temporary file name adds to the state path, before
    /// the process id and a random number.
    static let rebuildMarker = ".rebuilding."

    /// Deletes the temporary files of rebuilds whose process no longer exists.
    private func removeAbandonedRebuilds() {
        let (directory, name) = AbandonedFiles.split(statePath)
        AbandonedFiles.remove(in: directory, prefix: name + Self.rebuildMarker)
    }
}
