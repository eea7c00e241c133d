import Foundation

/// A one-line progress bar with rate and ETA on stderr, drawn only when
/// stderr is a terminal: scripts and cron jobs that capture the output get
/// none of it.
///
/// ```text
/// snapshot [##########··········]  50%  2,500,000/5,000,000 keys  1.2M keys/s  ETA 0:02
/// ```
///
/// Redrawn at most ten times a second; a phase without a known total shows
/// the count and rate only. Not thread-safe: one reporter per operation.
final class ProgressBar {
    /// Whether the bar is drawn: a caller may skip work that only feeds it.
    let isEnabled: Bool
    private let unit: String
    private let showsRate: Bool
    private var label: String
    private var total: UInt64?
    private var phaseStart = monotonicSeconds()
    private var lastDraw = 0.0
    private var drawn = false

    /// A progress bar for an operation counting `unit`s; enabled when
    /// stderr is a terminal (or when `enabled` says so).
    init(
        label: String, unit: String, total: UInt64? = nil, showsRate: Bool = true,
        enabled: Bool = ToolOutput.isTerminal(STDERR_FILENO)
    ) {
        self.isEnabled = enabled
        self.showsRate = showsRate
        self.label = label
        self.unit = unit
        self.total = total
    }

    /// Starts a new phase: the bar restarts with a new label and total.
    func begin(_ label: String, total: UInt64? = nil) {
        guard isEnabled else { return }
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        self.label = label
        self.total = total
        phaseStart = monotonicSeconds()
        lastDraw = 0
        drawn = false
        draw(done: 0, force: true)
    }

    /// Starts the phase `label` unless it is the current one.
    func enter(_ label: String, total: UInt64? = nil) {
        guard label != self.label else { return }
        begin(label, total: total)
    }

    /// Reports that `done` units of the current phase are finished.
    func update(done: UInt64) {
        guard isEnabled else { return }
        draw(done: done, force: false)
    }

    /// Runs `body` (which writes lines to the terminal) with the bar's line
    /// cleared first and drawn again after it, so the two do not mix.
    func interrupt(done: UInt64, _ body: () -> Void) {
        guard isEnabled, drawn else { return body() }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        body()
        draw(done: done, force: true)
    }

    /// Draws the final state of the phase and ends the line.
    func finish(done: UInt64) {
        guard isEnabled else { return }
        draw(done: done, force: true)
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }

    private func draw(done: UInt64, force: Bool) {
        let now = monotonicSeconds()
        guard force || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        drawn = true
        let elapsed = max(now - phaseStart, 1e-6)
        let rate = Double(done) / elapsed
        var line = "\r\u{1B}[2K\(label) "
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let filled = Int(fraction * 20)
            line += "[" + String(repeating: "#", count: filled) + String(repeating: "·", count: 20 - filled) + "]"
            line += String(format: " %3.0f%%  ", fraction * 100)
            line += "\(Self.grouped(done))/\(Self.grouped(total)) \(unit)  \(Self.compact(rate)) \(unit)/s"
            if rate > 0, done < total {
                line += "  ETA " + Self.clock((Double(total - done)) / rate)
            }
        } else if done > 0 {
            line += "\(Self.grouped(done)) \(unit)  " + (showsRate ? "\(Self.compact(rate)) \(unit)/s  " : "") + Self.clock(elapsed)
        } else {
            line += "… \(Self.clock(elapsed))"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// `1234567` as `1,234,567`.
    static func grouped(_ value: UInt64) -> String {
        let digits = Array(String(value))
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { text.append(",") }
            text.append(digit)
        }
        return text
    }

    /// A rate as `950`, `12.3K` or `1.2M`.
    static func compact(_ value: Double) -> String {
        switch value {
        case ..<1_000: String(format: "%.0f", value)
        case ..<1_000_000: String(format: "%.1fK", value / 1_000)
        default: String(format: "%.1fM", value / 1_000_000)
        }
    }

    /// Seconds as `m:ss` or `h:mm:ss`.
    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        let (hours, minutes, rest) = (whole / 3600, whole / 60 % 60, whole % 60)
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, rest) : String(format: "%d:%02d", minutes, rest)
    }
}
