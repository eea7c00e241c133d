// whycache-test-helper: the tests' stand-in for "another process on this machine".
//
// Usage: whycache-test-helper COMMAND ARGUMENTS...
// Each command lives in a `*Commands.swift` file next to this one and is listed
// in `HelperCommand.all`. A command prints its observations to stdout (one fact
// per line, so that the test can parse them) and exits 0, or prints a reason
// to stderr and exits non-zero. Tests send SIGKILL to some of these processes
// on purpose.

import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let command = HelperCommand.all[name] else {
    let names = HelperCommand.all.keys.sorted().joined(separator: ", ")
    HelperCommand.complain("usage: whycache-test-helper COMMAND ARGS... (commands: \(names))")
    exit(2)
}
do {
    try command(Array(arguments.dropFirst()))
    exit(0)
} catch {
    HelperCommand.complain("whycache-test-helper \(name): \(error)")
    exit(1)
}
