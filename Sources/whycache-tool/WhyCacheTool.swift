import ArgumentParser

/// `whycache-tool`: operate WhyCache state files from the shell.
@main
struct WhyCacheTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whycache-tool",
        abstract: "Operate WhyCache shared-state files and MySQL datastores: inspect, verify, create tables, benchmark, demo.",
        subcommands: [DemoCommand.self, StatCommand.self, VerifyCommand.self, MySQLCommand.self, RewriteHistoryCommand.self, BenchCommand.self, DemoWorkerCommand.self]
    )
}
