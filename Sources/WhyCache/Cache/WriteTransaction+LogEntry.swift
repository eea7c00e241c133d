extension WriteTransaction {
    /// Applies every operation of the log record `entry` to this transaction,
    /// in order, and moves the transaction's update id to the record's.
    /// Returns the number of operations applied.
    ///
    /// The record is validated whole (checksum, format, key and value limits)
    /// before its first operation is applied, so a corrupt record changes
    /// nothing and the transaction stays usable.
    ///
    /// - Throws: ``CacheError/corruptRecord(updateID:_:)`` for a record that
    ///   does not decode (nothing applied); ``CacheError/stateFile(_:)`` when
    ///   the file fails midway (the transaction is then invalidated).
    func apply(_ entry: LogEntry) throws(CacheError) -> Int {
        let outcome = entry.payload.withUnsafeBytes { bytes -> Result<Int, CacheError> in
            let record: LogRecordView
            do throws(LogRecordError) {
                record = try LogRecordView(validating: bytes)
            } catch {
                return .failure(.corruptRecord(updateID: entry.updateID, error))
            }
            do throws(StateFileError) {
                try record.forEachOperation { (kind, key, value) throws(StateFileError) in
                    switch kind {
                    case .set: try self.setValue(bytes: value, forKeyBytes: key)
                    case .delete: try self.removeValue(forKeyBytes: key)
                    }
                }
                try setUpdateID(entry.updateID)
            } catch {
                return .failure(CacheError(error))
            }
            return .success(record.operationCount)
        }
        return try outcome.get()
    }
}
