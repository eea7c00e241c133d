import WhyCache

/// The input of `set --from-json PATH|-`: JSON lines (``JSONWriteLine``),
/// read whole and checked line by line before anything is written.
enum JSONWriteInput {
    /// Reads every line of the file at `path` (stdin for `-`) and adds its
    /// operation to `write`, in order. Lines holding only whitespace are
    /// skipped.
    ///
    /// - Throws: ``ToolUsageError`` naming the line (and column) of the
    ///   first line that is not a valid object, holds bad hex with
    ///   `--hex`, or names a key or value beyond the limits;
    ///   ``DatastoreError/ioFailure(operation:path:errno:)`` when the file
    ///   cannot be opened or read.
    static func read(_ path: String, text: TextOptions, into write: inout LogWrite) throws {
        let file = try InputFile(path, purpose: "the --from-json input")
        defer { file.close() }
        var lines = LineReader(file)
        while let line = try lines.next() {
            let context = "--from-json line \(lines.lineNumber)"
            let parsed: JSONWriteLine?
            do {
                parsed = try JSONWriteLine.parse(line)
            } catch {
                throw ToolUsageError("\(context), column \(error.column): \(error.reason)")
            }
            let operation: LogOperation
            do {
                switch parsed {
                case nil:
                    continue
                case .set(let key, let value)?:
                    operation = .set(key: try text.bytes(key, naming: "key"), value: try text.bytes(value, naming: "value"))
                case .delete(let key)?:
                    operation = .delete(key: try text.bytes(key, naming: "key"))
                }
            } catch {
                throw ToolUsageError("\(context): \(error)")
            }
            try write.append(operation, context: context)
        }
    }
}
