/// Turns client-supplied names (experiment, run name, artifact file name) into one safe path
/// component. Client strings never become paths unchecked.
public enum PathNames {
    /// Longest component logd creates from a client name, in bytes.
    public static let maxComponentBytes = 96

    /// One path component made of `[A-Za-z0-9._+-]` only: every other byte (`/`, NUL, spaces,
    /// non-ASCII) becomes `_`, a leading `.` becomes `_` (so no `..`, no hidden files, no clash
    /// with logd's own `.logd`), overlong names are cut, and an empty result becomes `fallback`.
    public static func component(_ name: String, fallback: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(name.utf8.count, maxComponentBytes))
        for b in name.utf8 {
            if bytes.count == maxComponentBytes { break }
            let ok =
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E
                || b == 0x5F || b == 0x2D || b == 0x2B
            bytes.append(ok ? b : 0x5F)
        }
        if bytes.first == 0x2E { bytes[0] = 0x5F }
        if bytes.isEmpty || bytes.allSatisfy({ $0 == 0x5F }) && name.isEmpty { return fallback }
        return String(decoding: bytes, as: UTF8.self)
    }
}
