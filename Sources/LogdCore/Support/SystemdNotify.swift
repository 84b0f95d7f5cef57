#if canImport(Glibc)
    import Glibc
#endif
import CLibUV  // the socket flag constants (MSG_*) as glibc's <sys/socket.h> declares them with _GNU_SOURCE
import LogdSystem

/// systemd's `Type=notify` protocol without libsystemd: one datagram of `KEY=VALUE` lines to the
/// AF_UNIX SOCK_DGRAM socket named by `$NOTIFY_SOCKET` (a path, or an abstract name when it starts
/// with '@'). Without `$NOTIFY_SOCKET` (not started by systemd) every call does nothing.
public enum SystemdNotify {
    /// Sends `state` (e.g. "READY=1") to `$NOTIFY_SOCKET`. Never blocks; true when it was sent.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        return send(state, to: String(cString: raw))
    }

    /// Sends `state` to the notify socket `address` (a path, or '@' + an abstract name).
    @discardableResult
    public static func send(_ state: String, to address: String) -> Bool {
        var name = Array(address.utf8)
        guard name.count >= 2, name[0] == UInt8(ascii: "/") || name[0] == UInt8(ascii: "@") else { return false }
        let abstract = name[0] == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        // A path needs room for its terminating NUL; an abstract name is sent without one.
        guard name.count < capacity || (abstract && name.count == capacity) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in
            for (i, b) in name.enumerated() { dst[i] = b }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2
        let length = socklen_t(pathOffset + name.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { msg in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, msg.baseAddress, msg.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == message.count
    }
}

extension SystemdActivation {
    /// The address a listening Unix socket is bound to ('@' + name for an abstract socket), so
    /// that an adopted socket is reported by its real path; nil when it is not a bound AF_UNIX socket.
    public static func boundPath(_ fd: Int32) -> String? {
        var addr = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2
        guard ok == 0, addr.sun_family == sa_family_t(AF_UNIX), Int(length) > pathOffset else { return nil }
        var bytes = withUnsafeBytes(of: &addr.sun_path) { Array($0.prefix(Int(length) - pathOffset)) }
        if bytes.first == 0 {
            bytes[0] = UInt8(ascii: "@")
        } else if let nul = bytes.firstIndex(of: 0) {
            bytes.removeSubrange(nul...)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
