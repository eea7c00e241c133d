import ArgumentParser
import WhyCache

/// `--store URL` (required) and `--password-file PATH`: the log of a
/// command that reads or writes it.
///
/// A missing `--store` is a usage error (exit status 2) reported by the
/// parser; a malformed one (a URL with a password among them) is refused
/// before the command runs, and the message never repeats the password.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Required. The log: file:///absolute/dir or mysql://USER@HOST[:PORT]/DATABASE?table=NAME (also tls=, tls-ca=, socket=, replica=, replica-lag=, connect-timeout=).",
        valueName: "url"))
    var store: String

    @Option(name: .long, help: ArgumentHelp(
        "A file holding the MySQL password (a trailing line break is ignored); default: $\(LogConnection.passwordVariable).",
        valueName: "path"))
    var passwordFile: String?

    /// Refuses a malformed `--store` before the command runs.
    func validate() throws {
        do { _ = try StoreURL(parsing: store) } catch { throw ValidationError(error.description) }
    }

    /// The log these options name.
    ///
    /// - Throws: ``StoreURLError`` when `--store` is malformed (``validate()`` refused it already).
    func connection() throws -> LogConnection {
        LogConnection(store: try StoreURL(parsing: store), passwordFile: passwordFile)
    }
}

/// `--store` and `--password-file` for a command that does not use the log
/// (`get`, `keys`, `dump`, `snapshot`, `restore`): accepted, so that a
/// script may pass the same options to every command, checked like
/// everywhere else (a URL with a password is refused), and otherwise
/// ignored. Left out of the command's help.
struct UnusedLogOptions: ParsableArguments {
    @Option(name: .long, help: .hidden)
    var store: String?

    @Option(name: .long, help: .hidden)
    var passwordFile: String?

    /// Refuses a malformed `--store`, as ``LogOptions`` does.
    func validate() throws {
        if let store {
            do { _ = try StoreURL(parsing: store) } catch { throw ValidationError(error.description) }
        }
    }
}
