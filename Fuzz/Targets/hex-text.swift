// Fuzz target: the tool's `--hex` text (Sources/whycache-tool/Options/TextOptions.swift
// and `Hex`): keys, values and prefixes on a command line, parsed through
// ArgumentParser as `set --hex --prefix P KEY VALUE`.
//
// Input: up to three arguments separated by NUL bytes (the prefix, the key,
// the value). Beyond "no crash": hex text that is accepted spells its bytes
// exactly (encoding them again gives the same text, in lower case), and any
// bytes survive encoding and decoding.

@testable import WhyCache
@testable import whycache_tool

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    precondition(Hex.decode(Hex.encode(bytes)) == bytes, "bytes did not survive hex")
    _ = Hex.describe(bytes)
    var parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    while parts.count < 3 { parts.append("") }
    for text in parts {
        if let decoded = Hex.decode(text) {
            precondition(Hex.encode(decoded) == text.lowercased(), "hex text spells other bytes")
        }
    }
    let command = try? WhyCacheTool.parseAsRoot(
        ["set", "--hex", "--prefix", parts[0], "--state", "/nonexistent", "--", parts[1], parts[2]])
    if let set = command as? SetCommand {
        if let key = set.key { _ = try? set.text.bytes(key, naming: "key") }
        if let value = set.value { _ = try? set.text.bytes(value, naming: "value") }
        _ = try? set.subscription.requested(set.text)
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
