/// Fills a state file that no other process uses yet (a rebuild, a restore,
/// a rewrite) in a series of bounded transactions, and publishes the state's
/// identity — update id, initialized mark, applied record checksum — with
/// the last one.
///
/// Why bounded: a transaction keeps every block it replaced until it
/// commits, and its changes stay invisible until then, so one transaction
/// over millions of keys would hold its whole working set twice. Readers of
/// a private file see nothing anyway, so committing every
/// ``maximumKeysPerTransaction`` keys or ``maximumBytesPerTransaction``
/// bytes (by default) costs nothing but a commit record. The intermediate commits carry
/// the update id the file started with; only ``finish(updateID:isInitialized:appliedRecordChecksum:)``
/// publishes the new identity, so a process killed midway leaves a file
/// that no cache mistakes for a finished one (its caller installs it only
/// after `finish`).
package final class BatchedWriter {
    /// Keys set or removed per transaction, by default.
    package static let maximumKeysPerTransaction = 65_536
    /// Key and value bytes written per transaction, by default.
    package static let maximumBytesPerTransaction = 64 << 20

    private let file: SharedStateFile
    private let maximumKeys: Int
    private let maximumBytes: Int
    private var transaction: WriteTransaction
    private var keys = 0
    private var bytes = 0

    /// Starts the first transaction on `file`; each commits once it holds
    /// `maximumKeys` changes or `maximumBytes` key and value bytes.
    package init(
        file: SharedStateFile, maximumKeys: Int = maximumKeysPerTransaction, maximumBytes: Int = maximumBytesPerTransaction
    ) throws(StateFileError) {
        self.file = file
        self.maximumKeys = maximumKeys
        self.maximumBytes = maximumBytes
        transaction = try file.beginWrite()
    }

    /// Stores `value` under `key` (see ``WriteTransaction/setValue(bytes:forKeyBytes:)``).
    package func setValue(bytes value: UnsafeRawBufferPointer, forKeyBytes key: UnsafeRawBufferPointer) throws(StateFileError) {
        try transaction.setValue(bytes: value, forKeyBytes: key)
        try count(key.count + value.count)
    }

    /// Removes `key` if present (see ``WriteTransaction/removeValue(forKeyBytes:)``).
    package func removeValue(forKeyBytes key: UnsafeRawBufferPointer) throws(StateFileError) {
        _ = try transaction.removeValue(forKeyBytes: key)
        try count(key.count)
    }

    /// Commits the last transaction with the given identity and ends the writer.
    package func finish(updateID: UInt64, isInitialized: Bool, appliedRecordChecksum: UInt32?) throws(StateFileError) {
        try transaction.setUpdateID(updateID)
        if let appliedRecordChecksum { transaction.noteAppliedRecord(checksum: appliedRecordChecksum) }
        if isInitialized { try transaction.markInitialized() }
        try transaction.commit()
    }

    /// Abandons the open transaction (its changes since the last commit).
    package func abandon() {
        transaction.abandon()
    }

    /// Counts one change of `size` bytes and commits when a bound is reached.
    private func count(_ size: Int) throws(StateFileError) {
        keys += 1
        bytes += size
        guard keys >= maximumKeys || bytes >= maximumBytes else { return }
        try transaction.commit()
        transaction = try file.beginWrite()
        keys = 0
        bytes = 0
    }
}
