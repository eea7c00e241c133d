// Fuzz target: one log record (docs/FORMAT.md §3.1), as a datastore hands
// it to `update()`, through `LogRecordView(validating:)`, the one decoder
// of records.
//
// Beyond "no crash": a record that validates has exactly one encoding, so
// re-encoding its operations must give back the same bytes.

@testable import WhyCache

/// Decodes `bytes`; a valid record must round-trip exactly, and a refusal
/// must be a `LogRecordError` that can describe itself.
func check(_ bytes: [UInt8]) {
    let decoded = bytes.withUnsafeBytes { raw -> Result<[LogOperation], LogRecordError> in
        Result { () throws(LogRecordError) in
            let view = try LogRecordView(validating: raw)
            var total = 0
            view.forEachOperation { _, key, value in total += key.count + value.count }
            precondition(total < raw.count, "the operations hold more bytes than the record")
            return view.operations
        }
    }
    switch decoded {
    case .success(let operations):
        precondition((try? LogRecord(operations).encoded()) == bytes, "a valid record has another encoding")
    case .failure(let error):
        _ = error.description
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    check(bytes)
    ChecksumRepair.logRecord(&bytes)
    check(bytes)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked {
        [
            encodedRecord([("color", "blue")]),
            try! LogRecord([.delete(key: Array("color".utf8))]).encoded(),
            try! LogRecord([
                .set(key: Array("flag/a".utf8), value: []), .delete(key: [0xFF]),
                .set(key: Array(repeating: 0x61, count: 200), value: Array(repeating: 0x62, count: 300)),
            ]).encoded(),
        ]
    }
    return 0
}
