import Glibc

extension SharedStateFile {
    /// Whether the file at `path` begins with the state file's magic
    /// (`WhyCache`, FORMAT.md §1.2) — a state file, usable or damaged. `false`
    /// when there is no such file or it cannot be read.
    ///
    /// For tools that must not overwrite a state file by mistake (a snapshot
    /// written over the live state file would replace it under its readers).
    public static func hasStateFileSignature(at path: String) -> Bool {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { Glibc.close(descriptor) }
        var magic: UInt64 = 0
        let count = withUnsafeMutableBytes(of: &magic) { pread(descriptor, $0.baseAddress, $0.count, off_t(FileLayout.magicOffset)) }
        return count == MemoryLayout<UInt64>.size && UInt64(littleEndian: magic) == FileLayout.magic
    }
}
