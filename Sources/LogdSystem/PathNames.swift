#if canImport(Glibc)
    import Glibc
#endif

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

/// `<data root>/.logd/active/<name>`: the marker of a run that is not finished (running,
/// crashed, or being finished after its end), named by a 64-bit FNV-1a hash of the run's
/// directory (`<experiment>/<run>`). Written by logd's writer; read by the forwarder to tell a
/// run whose end is complete on disk.
package enum RunMarker {
    package static func name(directory: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in directory.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return hexString(withUnsafeBytes(of: h.bigEndian, Array.init))
    }

    /// Whether the run in `directory` (relative to `dataRoot`) still has an active marker.
    package static func isActive(dataRoot: String, directory: String) -> Bool {
        var st = stat()
        return stat(dataRoot + "/.logd/active/" + name(directory: directory), &st) == 0
    }
}
