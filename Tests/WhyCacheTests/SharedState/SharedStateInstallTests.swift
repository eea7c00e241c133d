import Foundation
import Testing
import WhyCache

/// ``SharedStateFile/install(_:at:unlessNewerThan:)``: the file at a path
/// never moves back to an older state, also when installs race.
@Suite struct SharedStateInstallTests {
    /// A state file at `path` holding `count` keys, at `updateID`, initialized.
    private func makeFile(_ path: String, updateID: UInt64, count: Int = 3) throws {
        let file = try SharedStateFile.open(at: path)
        try file.write { transaction in
            for index in 0..<count { try transaction.setValue(bytes("\(updateID)"), forKey: bytes("k\(index)")) }
            try transaction.setUpdateID(updateID)
            try transaction.markInitialized()
        }
    }

    private func updateID(at path: String) throws -> UInt64 {
        try SharedStateFile.open(at: path).updateID()
    }

    @Test func anOlderReplacementIsNotInstalledOverANewerState() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/state"
            try makeFile(path, updateID: 20)
            try makeFile(directory + "/older", updateID: 10)
            #expect(try SharedStateFile.install(directory + "/older", at: path, unlessNewerThan: 10) == .keptNewer(updateID: 20))
            #expect(try updateID(at: path) == 20)
            #expect(FileManager.default.fileExists(atPath: directory + "/older"), "the caller decides what to do with it")

            try makeFile(directory + "/newer", updateID: 30)
            let displaced = try SharedStateFile.open(at: path)
            #expect(try SharedStateFile.install(directory + "/newer", at: path, unlessNewerThan: 30) == .installed)
            #expect(try updateID(at: path) == 30)
            #expect(displaced.isRetired)
            #expect(try SharedStateFile.install(directory + "/older", at: directory + "/absent", unlessNewerThan: 10) == .installed)
            #expect(try updateID(at: directory + "/absent") == 10)
        }
    }

    /// Two threads install files at update ids 10 and 20 over a file at 5,
    /// at the same moment, many times: the path always ends at 20.
    @Test func racingInstallsKeepTheNewestState() async throws {
        try await withTemporaryDirectory { directory in
            for round in 0..<30 {
                let path = "\(directory)/state-\(round)"
                try makeFile(path, updateID: 5)
                try makeFile("\(path).a", updateID: 10)
                try makeFile("\(path).b", updateID: 20)
                async let first = Task.detached { try SharedStateFile.install("\(path).a", at: path, unlessNewerThan: 10) }.value
                async let second = Task.detached { try SharedStateFile.install("\(path).b", at: path, unlessNewerThan: 20) }.value
                let outcomes = try await [first, second]
                #expect(try updateID(at: path) == 20, "round \(round): \(outcomes)")
                #expect(outcomes[1] == .installed)
            }
        }
    }
}
