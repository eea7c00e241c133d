import Foundation
import Testing
@testable import WhyCache
@testable import WhyCacheState

/// docs/FORMAT.md's tables of the header page (section 1.2) and the commit
/// record (section 1.7) against the code: each table's rows tile their range
/// without gaps or overlaps, and every named field sits at the offset
/// `FileLayout` defines.
@Suite struct FormatDocumentTests {
    /// One row of a layout table: offset, size and field name.
    struct Row: Equatable {
        var offset: Int
        var size: Int
        var field: String
    }

    /// The rows of the tables under the heading `heading` (up to the next
    /// heading of the same level), whose offsets and sizes are plain numbers.
    static func rows(under heading: String) throws -> [[Row]] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../docs/FORMAT.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex(of: heading), "no heading \(heading)")
        var tables: [[Row]] = []
        var current: [Row] = []
        for line in lines[(start + 1)...] {
            if line.hasPrefix("### ") { break }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if line.hasPrefix("|"), cells.count >= 3, let offset = Int(cells[0]), let size = Int(cells[1]) {
                current.append(Row(offset: offset, size: size, field: cells[2]))
            } else if !current.isEmpty {
                tables.append(current)
                current = []
            }
        }
        if !current.isEmpty { tables.append(current) }
        return tables
    }

    static func expectTiled(_ table: [Row]) {
        for (row, next) in zip(table, table.dropFirst()) {
            #expect(row.offset + row.size == next.offset, "\(row) is not followed by \(next)")
        }
    }

    /// Expects every field of `expected` at its offset in `documented`.
    static func expectOffsets(of documented: [String: Int], equal expected: [String: Int]) {
        for (field, offset) in expected {
            #expect(documented[field] == offset, "\(field): FORMAT.md says \(documented[field].map(String.init) ?? "nothing"), the code \(offset)")
        }
    }

    @Test func theHeaderPageTablesMatchTheCode() throws {
        let tables = try Self.rows(under: "### 1.2 Header page")
        // Immutable part, shared words, writer area (the prefix block's
        // offsets are not plain numbers past its first rows).
        #expect(tables.count >= 3)
        for table in tables.prefix(3) { Self.expectTiled(table) }
        let fields = Dictionary(tables.flatMap { $0 }.filter { $0.field != "—" }.map { ($0.field, $0.offset) }) { first, _ in first }
        let expected: [String: Int] = [
            "magic": FileLayout.magicOffset, "formatVersion": FileLayout.formatVersionOffset,
            "readerSlotCount": FileLayout.readerSlotCountOffset, "mapSize": FileLayout.mapSizeOffset,
            "heapStart": FileLayout.heapStartOffset, "fileIdentifier": FileLayout.fileIdentifierOffset,
            "creationFlags": FileLayout.creationFlagsOffset, "headerChecksum": FileLayout.headerChecksumOffset,
            "currentCommit": FileLayout.currentCommitOffset, "retired": FileLayout.retiredOffset,
            "readerSlotHighWater": FileLayout.readerSlotHighWaterOffset, "writerDirty": FileLayout.writerDirtyOffset,
            "bump": FileLayout.bumpOffset, "freeBytes": FileLayout.freeBytesOffset, "pendingHead": FileLayout.pendingHeadOffset,
            "pendingBytes": FileLayout.pendingBytesOffset, "writerBootID": FileLayout.writerBootIDOffset,
            "freeListHeads": FileLayout.freeListHeadsOffset, "prefixCount": FileLayout.prefixCountOffset,
            "entriesLength": FileLayout.prefixEntriesLengthOffset,
        ]
        Self.expectOffsets(of: fields, equal: expected)
        #expect(fields["freeListHeads"].map { $0 + 8 * SizeClass.count } == 1376)
    }

    @Test func theCommitRecordTableMatchesTheCode() throws {
        let table = try #require(try Self.rows(under: "### 1.7 Commit record").first)
        Self.expectTiled(table)
        #expect(table.first?.offset == 0)
        #expect(table.last.map { $0.offset + $0.size } == FileLayout.commitRecordSize)
        let fields = Dictionary(table.filter { $0.field != "—" }.map { ($0.field, $0.offset) }) { first, _ in first }
        let expected: [String: Int] = [
            "magic": FileLayout.commitMagicOffset, "checksum": FileLayout.commitChecksumOffset,
            "transaction": FileLayout.commitTransactionOffset, "updateID": FileLayout.commitUpdateIDOffset,
            "root": FileLayout.commitRootOffset, "keyCount": FileLayout.commitKeyCountOffset,
            "heapEnd": FileLayout.commitHeapEndOffset, "bootID": FileLayout.commitBootIDOffset,
            "time": FileLayout.commitTimeOffset, "flags": FileLayout.commitFlagsOffset,
            "appliedRecordID": FileLayout.commitAppliedRecordIDOffset,
            "appliedRecordChecksum": FileLayout.commitAppliedRecordChecksumOffset,
        ]
        Self.expectOffsets(of: fields, equal: expected)
    }

    /// Section 1.6: sparse capacities are even, 4…48; a sparse node is
    /// shrunk once 6 slots are unused.
    @Test func sparseNodeCapacitiesAreEvenAsDocumented() {
        for count in 1...NodeKind.sparseLimit {
            let capacity = NodeKind.sparseCapacity(for: count)
            #expect(capacity % 2 == 0 && capacity >= max(4, count) && capacity <= NodeKind.sparseLimit && capacity - count <= 3)
        }
    }
}
