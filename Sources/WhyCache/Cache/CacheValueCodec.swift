#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns `Codable` values into the bytes a ``SharedCache`` stores, and back.
///
/// The cache stores bytes; ``SharedCache/set(encoding:forKey:)`` and
/// ``SharedCache/value(decoding:forKey:)`` go through the codec of the
/// cache's ``SharedCache/Configuration``. Every process reading a key must use
/// a codec that decodes what the writer's codec encoded; ``JSONValueCodec`` is
/// the default. Implement this protocol to use another encoding (a binary
/// format, compression, encryption).
public protocol CacheValueCodec: Sendable {
    /// The bytes that represent `value`.
    func encode<Value: Encodable>(_ value: Value) throws -> [UInt8]

    /// The value of type `type` that `bytes` represent. `bytes` point into
    /// shared memory and are valid only during the call: copy what you keep.
    func decode<Value: Decodable>(_ type: Value.Type, from bytes: UnsafeRawBufferPointer) throws -> Value
}

/// A ``CacheValueCodec`` that stores values as JSON (UTF-8, keys sorted, so
/// that equal values always encode to equal bytes).
public struct JSONValueCodec: CacheValueCodec {
    /// Creates the codec.
    public init() {}

    public func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: UnsafeRawBufferPointer) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
