import Glibc

/// Writes a checkpoint of a ``FileDatastore`` into a temporary file and
/// publishes it by renaming it to its final name.
///
/// While the writer is open it holds an exclusive `flock` on its temporary
/// file; the datastore deletes temporary checkpoint files nobody holds a lock
/// on, which reclaims the files of writers that crashed.
final class FileCheckpointWriter: CheckpointWriter {
    /// The update id whose state this checkpoint holds.
    let updateID: UInt64

    private let layout: FileDatastoreLayout
    private let durable: Bool
    private let io: BlockingIOQueue

    /// The open temporary file; `nil` once published or abandoned.
    private let state: Locked<Progress?>

    private struct Progress: Sendable {
        var file: DatastoreFile
        var temporaryPath: String
        var offset: Int
        var recordCount: UInt64
        var byteCount: UInt64
    }

    private init(updateID: UInt64, layout: FileDatastoreLayout, durable: Bool, io: BlockingIOQueue, progress: Progress) {
        self.updateID = updateID
        self.layout = layout
        self.durable = durable
        self.io = io
        self.state = Locked(progress)
    }

    /// Creates the temporary file of a checkpoint at `updateID` and writes its header.
    /// Blocks on file I/O.
    static func create(
        updateID: UInt64, layout: FileDatastoreLayout, durable: Bool, io: BlockingIOQueue
    ) throws(DatastoreError) -> FileCheckpointWriter {
        let path = FileDatastoreLayout.temporaryPath(for: layout.checkpointPath(updateID))
        let file = try DatastoreFile.open(path, flags: O_RDWR | O_CREAT | O_EXCL)
        do throws(DatastoreError) {
            // A brand-new file: nobody else can hold its lock.
            guard try file.lockExclusively(wait: false) else {
                throw DatastoreError.invalidRequest(reason: "\(path) is locked by someone else")
            }
            let header = FileHeader(kind: .checkpoint, value: updateID).encoded
            try file.write(header, at: 0)
            let progress = Progress(file: file, temporaryPath: path, offset: header.count, recordCount: 0, byteCount: 0)
            return FileCheckpointWriter(updateID: updateID, layout: layout, durable: durable, io: io, progress: progress)
        } catch {
            file.close()
            try? DatastoreFileSystem.remove(path)
            throw error
        }
    }

    func append(_ payload: [UInt8]) async throws(DatastoreError) {
        guard payload.count <= WhyCacheLimits.maximumRecordSize else {
            throw .recordTooLarge(size: payload.count, maximum: WhyCacheLimits.maximumRecordSize)
        }
        try await io.run { () throws(DatastoreError) in
            try self.state.withLock { (progress: inout Progress?) throws(DatastoreError) in
                guard var current = progress else { throw Self.finished }
                var frame: [UInt8] = []
                frame.reserveCapacity(LogFrame.headerSize + payload.count)
                LogFrame.append(updateID: current.recordCount + 1, payload: payload, to: &frame)
                try current.file.write(frame, at: current.offset)
                current.offset += frame.count
                current.recordCount += 1
                current.byteCount += UInt64(payload.count)
                progress = current
            }
        }
    }

    func publish() async throws(DatastoreError) -> CheckpointInfo {
        let layout = layout
        let updateID = updateID
        let durable = durable
        return try await io.run { () throws(DatastoreError) -> CheckpointInfo in
            try self.state.withLock { (progress: inout Progress?) throws(DatastoreError) -> CheckpointInfo in
                guard let current = progress else { throw Self.finished }
                progress = nil
                // Whatever happens below, the temporary file is closed; on failure it is removed.
                defer { current.file.close() }
                do throws(DatastoreError) {
                    let footer = CheckpointFile.footer(recordCount: current.recordCount, byteCount: current.byteCount)
                    try current.file.write(footer, at: current.offset)
                    if durable { try current.file.synchronizeData() }
                    try DatastoreFileSystem.rename(current.temporaryPath, to: layout.checkpointPath(updateID))
                    if durable { try DatastoreFileSystem.synchronizeDirectory(layout.directory) }
                } catch {
                    try? DatastoreFileSystem.remove(current.temporaryPath)
                    throw error
                }
                return CheckpointInfo(updateID: updateID, recordCount: current.recordCount, byteCount: current.byteCount)
            }
        }
    }

    func abandon() async {
        _ = try? await io.run { () throws(DatastoreError) in self.discard() }
    }

    deinit {
        discard()
    }

    /// Closes and deletes the temporary file, if still open.
    private func discard() {
        guard let current = state.withLock({ (progress: inout Progress?) -> Progress? in
            defer { progress = nil }
            return progress
        }) else { return }
        current.file.close()
        try? DatastoreFileSystem.remove(current.temporaryPath)
    }

    private static let finished = DatastoreError.invalidRequest(reason: "the checkpoint writer was already published or abandoned")
}
