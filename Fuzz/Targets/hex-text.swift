// Fuzz target: the tool's `--hex` text (`Hex` and Sources/whycache-tool/Options/TextOptions.swift):
// keys, values and prefixes as a command line spells them, decoded by the
// options every command parses with `--hex`.
//
// Input: up to three arguments separated by NUL bytes (a prefix, a key, a
// value). Beyond "no crash": hex text that is accepted spells its bytes
// exactly (encoding them again gives the same text, in lower case); the
// options accept exactly the text `Hex` decodes, and name the argument in
// their refusal; and any bytes survive encoding and decoding.

@testable import WhyCache
@testable import whycache_tool

/// The text options of a command given `--hex`, parsed once by ArgumentParser.
let hexText = try! TextOptions.parse(["--hex"])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    precondition(Hex.decode(Hex.encode(bytes)) == bytes, "bytes did not survive hex")
    precondition(hexText.text(bytes) == Hex.encode(bytes), "the options print other text than hex")
    _ = Hex.describe(bytes)
    var parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    while parts.count < 3 { parts.append("") }
    for (text, name) in zip(parts, ["prefix", "key", "value"]) {
        let decoded = Hex.decode(text)
        if let decoded {
            precondition(Hex.encode(decoded) == text.lowercased(), "hex text spells other bytes")
        }
        switch Result(catching: { () throws(ToolUsageError) in try hexText.bytes(text, naming: name) }) {
        case .success(let parsed):
            precondition(parsed == decoded, "the options accept text that is not hex, or decode it otherwise")
        case .failure(let error):
            precondition(decoded == nil, "the options refuse hex text")
            precondition(error.description.contains(name), "the refusal does not name the argument")
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        ["666c61672f\u{0}6b6579\u{0}76616c7565", "\u{0}6BFF\u{0}", "abc\u{0}0g\u{0}-", "00\u{0}ffFF\u{0}"].map { Array($0.utf8) }
    }
    return 0
}
