import ArgumentParser
import WhyCache
import WhyCacheMySQL

/// `whycache-tool init-store --store URL [--print-sql]`
struct InitStoreCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-store",
        abstract: "Create the log named by --store where missing (a folder, or MySQL tables) and check an existing one; print which.")

    @OptionGroup var log: LogOptions
    @OptionGroup var unusedState: UnusedStateOptions

    @Flag(name: .long, help: "For a mysql:// store: print the SQL that creates its tables, and touch nothing.")
    var printSQL = false

    func execute() async throws {
        let connection = try log.connection()
        let store = connection.store
        if printSQL {
            guard case .mysql(let address) = store else { throw ToolUsageError("--print-sql needs a mysql:// store") }
            let table = try MySQLIdentifier(address.table ?? StoreURL.defaultTable)
            ToolOutput.line(MySQLDatastore.schemaScript(table: table).trimmingSuffix("\n"))
            return
        }
        let message = try await connection.withDatastore(creating: true) { datastore in
            var existing: UInt64?
            do {
                existing = try await datastore.latestUpdateID()
            } catch DatastoreError.notADatastore {
                existing = nil
            }
            try await datastore.createIfMissing()
            guard let existing else { return "created \(store.description); the log is empty" }
            return "\(store.description) already existed (latest update id \(existing)); checked its format"
        }
        ToolOutput.line(message)
    }
}

extension String {
    /// This string without trailing copies of `suffix`.
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
