import Foundation
import Testing
import WhyCache

/// What the tool says about itself: `follow` and ``BackgroundUpdater``
/// share their defaults.
@Suite struct ToolHelpTests {
    /// `follow --interval` and `--maximum-backoff` default to
    /// ``BackgroundUpdater``'s defaults.
    @Test func followDefaultsToTheBackgroundUpdatersTiming() throws {
        let help = try ToolRunner.run(["follow", "--help"])
        #expect(help.status == 0, "\(help.errors)")
        let defaults = BackgroundUpdater.Configuration.init()
        for (option, duration) in [("--interval", defaults.interval), ("--maximum-backoff", defaults.maximumBackoff)] {
            let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
            #expect(Self.help(of: option, in: help.lines).contains("(default: \(seconds))"), "\(option): \(help.lines)")
        }
        #expect(BackgroundUpdater.Configuration.defaultMaximumBackoff == defaults.maximumBackoff)
        #expect(BackgroundUpdater.Configuration.defaultInterval == defaults.interval)
    }

    /// The help of `option` in the OPTIONS section: its line and the lines
    /// that continue it.
    private static func help(of option: String, in lines: [String]) -> String {
        guard let section = lines.firstIndex(where: { $0.hasPrefix("OPTIONS:") }),
            let start = lines[section...].firstIndex(where: {
                let trimmed = $0.trimmingCharacters(in: .whitespaces)
                return trimmed.hasPrefix(option + " ") || trimmed == option
            })
        else { return "" }
        var text = lines[start]
        for line in lines[(start + 1)...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("-") || trimmed.hasPrefix("<") { break }
            text += " " + trimmed
        }
        return text
    }
}
