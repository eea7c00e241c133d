/// A byte string made of a head, an optional middle byte and a tail, without
/// copying them anywhere: the key bytes that path compression moves when a
/// node is split or merged (`prefix + branch byte + child prefix`).
/// The buffers must stay valid while the value is used.
struct ByteConcatenation {
    var head: UnsafeRawBufferPointer
    var middle: UInt8?
    var tail: UnsafeRawBufferPointer

    init(_ head: UnsafeRawBufferPointer, _ middle: UInt8? = nil, _ tail: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        self.head = head
        self.middle = middle
        self.tail = tail
    }

    var count: Int { head.count + (middle == nil ? 0 : 1) + tail.count }

    /// Copies the bytes to `destination`, which must have room for `count` bytes.
    func copy(to destination: UnsafeMutableRawPointer) {
        var at = destination
        if head.count > 0 {
            at.copyMemory(from: head.baseAddress.unsafelyUnwrapped, byteCount: head.count)
            at += head.count
        }
        if let middle {
            at.storeBytes(of: middle, as: UInt8.self)
            at += 1
        }
        if tail.count > 0 { at.copyMemory(from: tail.baseAddress.unsafelyUnwrapped, byteCount: tail.count) }
    }
}
