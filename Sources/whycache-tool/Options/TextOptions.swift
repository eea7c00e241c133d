import ArgumentParser
import WhyCache

/// `--hex`: keys, values and key prefixes on the command line and in the
/// output are UTF-8 text, or hexadecimal for binary data.
struct TextOptions: ParsableArguments {
    @Flag(name: .long, help: "Keys, values and prefixes are hexadecimal on input and output (for binary data).")
    var hex = false

    /// The bytes a key, value or prefix spells, on the command line or in
    /// `set --from-json` input.
    ///
    /// - Throws: ``ToolUsageError`` for bad hex text (the message quotes at
    ///   most its first 40 characters).
    func bytes(_ text: String, naming what: String) throws(ToolUsageError) -> [UInt8] {
        guard hex else { return Array(text.utf8) }
        guard let bytes = Hex.decode(text) else {
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            throw ToolUsageError("the \(what) \"\(shown)\" is not hexadecimal (two digits per byte)")
        }
        return bytes
    }

    /// `bytes` as output text: hex, or the UTF-8 text (invalid sequences
    /// shown as U+FFFD; `--hex` shows them exactly).
    func text(_ bytes: some Collection<UInt8>) -> String {
        hex ? Hex.encode(bytes) : String(decoding: bytes, as: UTF8.self)
    }

    /// Whether ``text(_:)`` shows `bytes` exactly: always with `--hex`,
    /// else when they are UTF-8 text.
    func showsExactly(_ bytes: [UInt8]) -> Bool {
        hex || String(validating: bytes, as: UTF8.self) != nil
    }

    /// The warning of a command that printed some `what` ("keys") inexactly.
    static func inexactWarning(_ what: String) -> String {
        "some \(what) are not UTF-8 text and were printed with U+FFFD in place of their bad bytes; use --hex"
    }
}

/// JSON text for the tool's line-oriented output, written by hand because
/// `dump` writes millions of lines and needs only strings.
enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    static func quoted(_ text: String) -> String {
        var result = "\""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                result += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
