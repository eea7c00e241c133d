// Fuzz target: the tool's `--store` URL (Sources/whycache-tool/Options/StoreURL.swift),
// as an operator's script gives it: `StoreURL(parsing:)` is what every
// command's option validation and connection run (Options/StoreOptions.swift,
// Options/LogOptions.swift), and what a MySQL URL turns into.
//
// Beyond "no crash": a `mysql://` URL whose user part holds a `:` is always
// refused as holding a password, and the refusal never repeats it.

@testable import whycache_tool

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parsed = Result { () throws(StoreURLError) in try StoreURL(parsing: text) }
    switch parsed {
    case .success(let url):
        _ = url.description
        if case .mysql(let address) = url { _ = try? address.configuration(password: "secret") }
    case .failure(let error):
        _ = error.description
    }
    if text.prefix(8).lowercased() == "mysql://", let at = text.lastIndex(of: "@"),
        text[text.index(text.startIndex, offsetBy: 8)..<at].contains(":")
    {
        precondition(parsed == .failure(.passwordInURL), "a URL with a password was not refused as such")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        [
            "file:///var/lib/flags/log", "file://localhost/var/lib/a%20b/", "FILE:///x?y",
            "mysql://whycache@db.internal:3306/app?table=flags_log",
            "mysql://u%40x@[::1]:3307/db?tls=verify-server&tls-ca=/etc/ca.pem&socket=/run/m.sock",
            "mysql://u@h/db?replica=r1:3306&replica=[fe80::1]&replica-lag=2.5",
            "mysql://u:pw@h/db", "http://x",
        ].map { Array($0.utf8) }
    }
    return 0
}
