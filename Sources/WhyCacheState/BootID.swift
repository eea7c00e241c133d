import Glibc

/// The identity of the current boot of this machine, used to notice that a
/// commit made without `fsync` may not have survived a restart.
struct BootID: Hashable {
    var high: UInt64
    var low: UInt64

    static let zero = BootID(high: 0, low: 0)

    /// Read once from `/proc/sys/kernel/random/boot_id` (a UUID); zero when
    /// unavailable, which disables the check.
    static let current: BootID = {
        guard let file = try? StateFileDescriptor.open("/proc/sys/kernel/random/boot_id", flags: O_RDONLY) else { return .zero }
        defer { file.close() }
        guard let text = try? file.read(count: 64, at: 0), !text.isEmpty else { return .zero }
        var digits: [UInt8] = []
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digits.append(byte - UInt8(ascii: "a") + 10)
            default: continue
            }
        }
        guard digits.count == 32 else { return .zero }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for digit in digits[0..<16] { high = high << 4 | UInt64(digit) }
        for digit in digits[16..<32] { low = low << 4 | UInt64(digit) }
        return BootID(high: high, low: low)
    }()
}
