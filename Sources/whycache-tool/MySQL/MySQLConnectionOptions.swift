import ArgumentParser
import Foundation
import WhyCache
import WhyCacheMySQL

/// The options that say how to reach a MySQL or MariaDB server and which log
/// tables to use, shared by `whycache-tool mysql …` and `bench mysql`.
///
/// The password comes from `--password-file` or the environment variable
/// `WHYCACHE_MYSQL_PASSWORD`, never from a command-line flag: command lines
/// are visible to every user through `ps`.
struct MySQLConnectionOptions: ParsableArguments {
    /// The environment variable read when no `--password-file` is given.
    static let passwordVariable = "WHYCACHE_MYSQL_PASSWORD"

    @Option(name: .long, help: "The server's host name or address (TCP).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "The server's TCP port.")
    var port = 3306

    @Option(name: .long, help: ArgumentHelp("The server's Unix socket; overrides --host and --port.", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: "The user to log in as.")
    var user: String

    @Option(name: .long, help: ArgumentHelp(
        "A file holding the password (a trailing line break is ignored). Without it the password is read from \(passwordVariable); without both, none is sent.",
        valueName: "path"))
    var passwordFile: String?

    @Option(name: .long, help: "The database (schema) that holds the tables.")
    var database: String

    @Option(name: .long, help: "The log table; the datastore's other tables are named after it. (default: whycache_log; bench mysql: bench_<pid>)")
    var table: String?

    @Option(name: .long, help: "Transport security: disabled, required or verify-server.")
    var tls: MySQLTLSOption = .disabled

    @Option(name: .long, help: ArgumentHelp("A PEM file of the certificate authorities to trust (with --tls verify-server).", valueName: "path"))
    var tlsCa: String?

    /// The configuration these options describe, for the log table `--table`
    /// or else `defaultTable`.
    ///
    /// - Throws: ``DatastoreError/invalidConfiguration(reason:)`` for a bad
    ///   table name or an empty password file, ``DatastoreError/ioFailure(operation:path:errno:)``
    ///   when the password file cannot be read.
    func configuration(defaultTable: String = "whycache_log") throws(DatastoreError) -> MySQLConfiguration {
        let endpoint: MySQLEndpoint = socket.map { .socket(path: $0) } ?? .tcp(host: host, port: port)
        var configuration = MySQLConfiguration(
            endpoint: endpoint, user: user, password: try password(), database: database,
            table: try MySQLIdentifier(table ?? defaultTable))
        configuration.tls = MySQLTLSConfiguration(mode: tls.mode, certificateAuthorityPath: tlsCa)
        return configuration
    }

    /// The password: the contents of `--password-file`, else the environment
    /// variable, else empty.
    private func password() throws(DatastoreError) -> String {
        guard let passwordFile else {
            return ProcessInfo.processInfo.environment[Self.passwordVariable] ?? ""
        }
        var text = String(decoding: try Self.contents(of: passwordFile), as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        if text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else {
            throw .invalidConfiguration(reason: "the password file \(passwordFile) is empty")
        }
        return text
    }

    /// The bytes of the file at `path`.
    private static func contents(of path: String) throws(DatastoreError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .ioFailure(operation: "open the password file", path: path, errno: errno) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw .ioFailure(operation: "read the password file", path: path, errno: errno)
            }
            bytes += chunk[0..<count]
        }
    }
}

/// The values of `--tls`.
enum MySQLTLSOption: String, ExpressibleByArgument, CaseIterable {
    /// Plain connections.
    case disabled
    /// TLS without verifying the server's certificate.
    case required
    /// TLS with the server's certificate verified.
    case verifyServer = "verify-server"

    /// The library's TLS mode.
    var mode: MySQLTLSConfiguration.Mode {
        switch self {
        case .disabled: .disabled
        case .required: .required
        case .verifyServer: .verifyServer
        }
    }
}

extension ToolFailure {
    /// Runs `body`; a ``DatastoreError`` is printed on stderr (its description
    /// never holds the password) and ends the tool with exit code 1 when the
    /// tables are missing or damaged, 3 otherwise.
    static func mapDatastore<T>(_ body: () async throws(DatastoreError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            FileHandle.standardError.write(Data("whycache-tool: \(error)\n".utf8))
            switch error {
            case .notADatastore, .corruptRecord:
                throw ExitCode(1)
            default:
                throw ExitCode(3)
            }
        }
    }
}
