import Foundation
import WhyCache
import WhyCacheMySQL

/// The fresh, empty logs that benchmarks write their workloads to, in the
/// datastore of `--store`.
enum BenchLogs {
    /// Runs `body` with a new, empty log and a name for it in notes.
    ///
    /// For `file:///DIR`, a new folder `whycache-bench-<pid>-<suffix>` in DIR
    /// with fsync policy `always`, removed afterwards (also when `body`
    /// throws); for `mysql://…`, the tables of the log `<table>_<suffix>`
    /// (default table `bench_<pid>`), which must be empty and stay on the
    /// server.
    ///
    /// - Parameter options: the password of a MySQL `store`.
    static func withFreshLog(
        _ store: StoreURL, options: StoreOptions, suffix: String, _ body: (any Datastore, String) async throws -> Void
    ) async throws {
        switch store {
        case .file(let directory):
            let path = "\(directory)/whycache-bench-\(getpid())-\(suffix)"
            defer { try? FileManager.default.removeItem(atPath: path) }
            let datastore = try FileDatastore(directory: path, options: FileDatastoreOptions(syncPolicy: .always))
            try await datastore.createIfMissing()
            try await body(datastore, "the file datastore (fsync always) in \(directory)")
        case .mysql(let address):
            let base = try address.configuration(password: try options.password(), defaultTable: "bench_\(getpid())")
            let datastore = try await BenchMySQLCommand.freshLog(base, suffix)
            do {
                try await body(datastore, "MySQL (\(datastore.configuration.location), single-key compaction on)")
                await datastore.close()
            } catch {
                await datastore.close()
                throw error
            }
        }
    }
}
