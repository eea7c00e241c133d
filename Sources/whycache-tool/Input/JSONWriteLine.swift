/// One line of `set --from-json` input: a JSON object that sets or deletes
/// one key, in the form `dump` prints.
///
/// ```text
/// {"key": "user/1", "value": "ada"}     sets user/1 to ada
/// {"key": "user/2", "delete": true}     deletes user/2
/// ```
///
/// The strings are the key and value as text, or hexadecimal with `--hex`
/// (``TextOptions``), exactly as `dump` prints them.
///
/// The parser accepts exactly that and nothing looser: a JSON object
/// (RFC 8259 syntax, whitespace anywhere between tokens) whose members are
/// `"key"` (a string), and either `"value"` (a string) or `"delete"`
/// (`true`); every other member, a repeated member, another type, an
/// unpaired surrogate escape, a control character in a string, bytes that
/// are not UTF-8, or anything after the object is an error that says where.
enum JSONWriteLine: Equatable {
    /// `{"key": key, "value": value}`.
    case set(key: String, value: String)
    /// `{"key": key, "delete": true}`.
    case delete(key: String)

    /// Parses `line`; nil when it holds only whitespace.
    ///
    /// - Throws: ``JSONLineError`` naming the first problem and its column.
    static func parse(_ line: ArraySlice<UInt8>) throws(JSONLineError) -> JSONWriteLine? {
        var parser = JSONObjectParser(line)
        parser.skipWhitespace()
        if parser.atEnd { return nil }
        var key: String?
        var value: String?
        var deletes = false
        try parser.expect(UInt8(ascii: "{"), "a line must be a JSON object: {\"key\": …, \"value\": …} or {\"key\": …, \"delete\": true}")
        parser.skipWhitespace()
        if !parser.consume(UInt8(ascii: "}")) {
            repeat {
                parser.skipWhitespace()
                let nameColumn = parser.column
                let name = try parser.string()
                parser.skipWhitespace()
                try parser.expect(UInt8(ascii: ":"), "expected : after the member name")
                parser.skipWhitespace()
                let memberColumn = parser.column
                switch name {
                case "key":
                    guard key == nil else { throw JSONLineError("the member \"key\" appears twice", column: nameColumn) }
                    key = try parser.string(naming: "key")
                case "value":
                    guard value == nil else { throw JSONLineError("the member \"value\" appears twice", column: nameColumn) }
                    value = try parser.string(naming: "value")
                case "delete":
                    guard !deletes else { throw JSONLineError("the member \"delete\" appears twice", column: nameColumn) }
                    guard parser.consume(literal: "true") else {
                        throw JSONLineError("\"delete\" must be true (leave it out to set the key)", column: memberColumn)
                    }
                    deletes = true
                default:
                    throw JSONLineError(
                        "unknown member \(JSONText.quoted(name)); a line holds \"key\" and either \"value\" or \"delete\": true",
                        column: nameColumn)
                }
                parser.skipWhitespace()
            } while parser.consume(UInt8(ascii: ","))
            try parser.expect(UInt8(ascii: "}"), "expected , or } after a member")
        }
        parser.skipWhitespace()
        guard parser.atEnd else { throw JSONLineError("unexpected text after the object (one object per line)", column: parser.column) }
        guard let key else { throw JSONLineError("the object has no \"key\"", column: 1) }
        switch (value, deletes) {
        case (let value?, false): return .set(key: key, value: value)
        case (nil, true): return .delete(key: key)
        case (nil, false): throw JSONLineError("the object has neither \"value\" nor \"delete\": true", column: 1)
        case (_?, true): throw JSONLineError("the object has both \"value\" and \"delete\"", column: 1)
        }
    }
}

/// Why a line of JSON input was refused, and where.
struct JSONLineError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    var reason: String
    /// The byte in the line where it was found, 1 for the first.
    var column: Int

    /// An error `reason` found at byte `column` of the line.
    init(_ reason: String, column: Int) {
        self.reason = reason
        self.column = column
    }

    var description: String { "column \(column): \(reason)" }
}

/// A cursor over the bytes of one line, reading the JSON tokens that
/// ``JSONWriteLine`` needs: punctuation, strings and `true`.
///
/// Invariant: `position` lies in `bytes.startIndex...bytes.endIndex`.
private struct JSONObjectParser {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    /// A cursor at the first byte of `bytes`.
    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    /// Whether every byte was read.
    var atEnd: Bool { position == bytes.endIndex }

    /// The 1-based column of the next byte.
    var column: Int { position - bytes.startIndex + 1 }

    /// Skips JSON whitespace: space, tab, line feed, carriage return.
    mutating func skipWhitespace() {
        while position < bytes.endIndex {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Reads `byte` if it is next.
    mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.endIndex, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// Reads `literal` if it is next, not followed by more letters.
    mutating func consume(literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.endIndex - position >= count else { return false }
        let matches = literal.withUTF8Buffer { expected in bytes[position..<position + count].elementsEqual(expected) }
        guard matches else { return false }
        let after = position + count
        if after < bytes.endIndex, Self.isLetter(bytes[after]) { return false }
        position = after
        return true
    }

    /// Reads `byte`, else throws `reason` at the current column.
    mutating func expect(_ byte: UInt8, _ reason: String) throws(JSONLineError) {
        guard consume(byte) else { throw JSONLineError(reason, column: column) }
    }

    /// Reads a JSON string; `what` names it when something else is there.
    mutating func string(naming what: String? = nil) throws(JSONLineError) -> String {
        guard consume(UInt8(ascii: "\"")) else {
            let reason = what.map { "\"\($0)\" must be a string" } ?? "expected a member name in double quotes"
            throw JSONLineError(reason, column: column)
        }
        let opening = column - 1
        var text: [UInt8] = []
        var runStart = position
        while true {
            guard position < bytes.endIndex else { throw JSONLineError("the string has no closing quote", column: opening) }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                text += bytes[runStart..<position]
                position += 1
                // Escapes add only valid UTF-8 (unpaired surrogates are
                // refused), so this checks the raw bytes of the line.
                guard let string = String(validating: text, as: UTF8.self) else {
                    throw JSONLineError("the string is not UTF-8 text (for binary data, use hex with --hex)", column: opening)
                }
                return string
            case UInt8(ascii: "\\"):
                text += bytes[runStart..<position]
                position += 1
                try escape(into: &text)
                runStart = position
            case 0..<0x20:
                throw JSONLineError("a control character in a string must be escaped (\\n, \\t, \\u00XX)", column: column)
            default:
                position += 1
            }
        }
    }

    /// Reads the escape after a backslash and appends its UTF-8 to `text`.
    private mutating func escape(into text: inout [UInt8]) throws(JSONLineError) {
        let escapeColumn = column - 1
        guard position < bytes.endIndex else { throw JSONLineError("the string has no closing quote", column: escapeColumn) }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(byte)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hexQuad(escapeColumn)
            if (0xDC00...0xDFFF).contains(scalar) {
                throw JSONLineError("\\u escape of an unpaired low surrogate", column: escapeColumn)
            }
            if (0xD800...0xDBFF).contains(scalar) {
                guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                    throw JSONLineError("\\u escape of an unpaired high surrogate", column: escapeColumn)
                }
                let low = try hexQuad(escapeColumn)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw JSONLineError("\\u escape of an unpaired high surrogate", column: escapeColumn)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            // Not a surrogate here, so always a Unicode scalar.
            text += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw JSONLineError("unknown escape \\\(Character(Unicode.Scalar(byte)))", column: escapeColumn)
        }
    }

    /// Reads the four hex digits of a `\u` escape.
    private mutating func hexQuad(_ escapeColumn: Int) throws(JSONLineError) -> UInt32 {
        guard bytes.endIndex - position >= 4 else { throw JSONLineError("\\u needs four hex digits", column: escapeColumn) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Self.hexDigit(bytes[position]) else {
                throw JSONLineError("\\u needs four hex digits", column: escapeColumn)
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// The value of the hex digit `byte`, or nil when it is none.
    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Whether `byte` is an ASCII letter or digit, which may not follow a
    /// literal such as `true`.
    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
