import Glibc
import WhyCacheSupport

extension SharedStateFile {
    /// Whether the file at `path` begins with the state file's magic
    /// (`WhyCache`, FORMAT.md §1.2) — a state file, usable or damaged. `false`
    /// when there is no such file or it cannot be read.
    ///
    /// For tools that must not overwrite a state file by mistake (a snapshot
    /// written over the live state file would replace it under its readers).
    public static func hasStateFileSignature(at path: String) -> Bool {
        guard let file = try? StateFileDescriptor.open(path, flags: O_RDONLY) else { return false }
        defer { file.close() }
        return hasStateFileSignature(file)
    }

    /// Whether the open `file` begins with the state file's magic; false when
    /// it cannot be read.
    static func hasStateFileSignature(_ file: StateFileDescriptor) -> Bool {
        guard let magic = try? file.read(count: 8, at: FileLayout.magicOffset), magic.count == 8 else { return false }
        return magic.loadLittleEndian(UInt64.self, at: 0) == FileLayout.magic
    }
}
