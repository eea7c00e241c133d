import ArgumentParser
import Foundation
import WhyCache

/// `whycache-tool bench …`: release-built benchmarks that print one JSON object per line.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks; each prints one JSON object per line: {\"metric\", \"value\", \"unit\", \"keys\", …}.",
        subcommands: [BenchStateCommand.self, BenchUpdateCommand.self, BenchMySQLCommand.self, BenchCoalesceCommand.self, BenchRewriteCommand.self, BenchBootstrapCommand.self, BenchFleetCommand.self, BenchChildCommand.self, BenchFleetFollowerCommand.self, BenchFleetWriterCommand.self, BenchIndexFloorCommand.self])
}

/// Throws a usage error naming the first of the `counts` (option name
/// without dashes, and value) that is below 1.
func requireAtLeastOne(_ counts: KeyValuePairs<String, Int>) throws {
    if let (name, _) = counts.first(where: { $0.value < 1 }) {
        throw ValidationError("--\(name) must be at least 1")
    }
}
