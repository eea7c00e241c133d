import Testing
import WhyCache
import WhyCacheTestSupport

/// CRC-32C: the published check values, incremental use, and the CPU
/// instruction and the tables agreeing on every length and alignment.
@Suite struct CRC32CTests {
    /// The check value of the CRC catalogue and the test vectors of RFC 3720
    /// (iSCSI), appendix B.4.
    @Test func publishedVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    /// Feeding the bytes in pieces gives the checksum of the whole.
    @Test func piecesEqualTheWhole() {
        var generator = SeededGenerator(seed: 0xC4C)
        let bytes = (0..<1_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for cut in [0, 1, 7, 8, 9, 500, 999, 1_000] {
            var crc = CRC32C()
            crc.update(bytes[..<cut])
            crc.update(bytes[cut...])
            #expect(crc.value == CRC32C.checksum(bytes), "cut at \(cut)")
        }
    }

    /// The instruction (when this CPU has one) and the tables agree on every
    /// length from 0 to 300 bytes at every alignment within a word.
    @Test func instructionAndTablesAgree() {
        #if arch(x86_64)
        // Every x86-64 server CPU since 2008 has SSE 4.2.
        #expect(CRC32C.usesHardware)
        #endif
        var generator = SeededGenerator(seed: 0xC4C2)
        let bytes = (0..<320).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            for start in 0..<8 {
                for count in 0...300 {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<start + count])
                    #expect(CRC32C.checksum(slice) == CRC32C.checksumWithTables(slice), "start \(start), count \(count)")
                }
            }
        }
    }
}
