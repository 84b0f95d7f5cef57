#if canImport(Glibc)
    import Glibc
#endif

/// `sockaddr_un` for a filesystem path: the one builder the daemon's listener, the control client
/// and the tools share.
package enum UnixAddress {
    /// nil when the path does not fit `sun_path` (107 bytes and a NUL).
    package static func make(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return addr
    }
}
