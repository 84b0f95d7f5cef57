#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// Creates the listening Unix socket safely.
///
/// The socket lives in a directory logd owns with mode 0700 (0750 with a group), and is created
/// with mode 0600 (0660 with a group) from the first instant (umask around bind). A socket file
/// left by a crashed daemon (connect refused) is replaced; a live daemon makes this one refuse.
enum SocketListener {
    struct StartupError: Error, CustomStringConvertible {
        var description: String
    }

    static func groupID(_ name: String) throws(StartupError) -> gid_t {
        if let n = gid_t(name) { return n }
        var gr = group()
        var result: UnsafeMutablePointer<group>?
        var buf = [CChar](repeating: 0, count: 4096)
        guard getgrnam_r(name, &gr, &buf, buf.count, &result) == 0, result != nil else {
            throw StartupError(description: "socket_group '\(name)' does not exist")
        }
        return gr.gr_gid
    }

    static func bind(path: String, group: String) throws(StartupError) -> Int32 {
        let gid: gid_t? = group.isEmpty ? nil : try groupID(group)
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty {
            var before = stat()
            let existed = lstat(dir, &before) == 0
            do { try Posix.makeDirectories(dir, mode: gid == nil ? 0o700 : 0o750) } catch {
                throw StartupError(description: "cannot create socket directory: \(error)")
            }
            var st = stat()
            guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw StartupError(description: "socket directory \(dir) is not a directory")
            }
            if existed {
                // A directory logd did not create is not logd's to chmod. It must not let another
                // user replace the socket: writable by group or others only with the sticky bit
                // (as /tmp), and owned by logd's user or root.
                let open = st.st_mode & 0o022 != 0 && st.st_mode & S_ISVTX == 0
                if open || (st.st_uid != getuid() && st.st_uid != 0) {
                    throw StartupError(
                        description:
                            "socket directory \(dir) is writable by other users (mode \(String(st.st_mode & 0o7777, radix: 8)), owner uid \(st.st_uid)); "
                            + "refusing to listen there: use a directory only you can write (chmod go-w), or let logd create it")
                }
            } else if st.st_uid == getuid() {
                let mode: mode_t = gid == nil ? 0o700 : 0o750
                if let gid, st.st_gid != gid, chown(dir, st.st_uid, gid) != 0 {
                    throw StartupError(description: "cannot give \(dir) to group \(group): \(SystemError("chown"))")
                }
                if st.st_mode & 0o777 != mode, chmod(dir, mode) != 0 {
                    throw StartupError(description: "cannot set mode of \(dir): \(SystemError("chmod"))")
                }
            }
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw StartupError(description: "\(path) exists and is not a socket; not touching it")
            }
            if isLive(path) {
                throw StartupError(description: "another logd is already running on \(path)")
            }
            unlink(path)  // stale: left by a daemon that crashed
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartupError(description: "\(SystemError("socket"))") }
        var addr = try address(path)
        let old = umask(0o177)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard rc == 0 else {
            let e = SystemError("bind", path: path)
            close(fd)
            throw StartupError(description: "\(e)")
        }
        if let gid {
            guard chown(path, getuid(), gid) == 0, chmod(path, 0o660) == 0 else {
                let e = SystemError("chown/chmod", path: path)
                close(fd)
                throw StartupError(description: "\(e)")
            }
        }
        guard listen(fd, 1024) == 0 else {
            let e = SystemError("listen")
            close(fd)
            throw StartupError(description: "\(e)")
        }
        return fd
    }

    static func address(_ path: String) throws(StartupError) -> sockaddr_un {
        guard let addr = UnixAddress.make(path) else {
            throw StartupError(description: "socket path too long (\(path.utf8.count) bytes, limit 107): \(path)")
        }
        return addr
    }

    /// Whether a daemon answers on `path` (connect succeeds).
    static func isLive(_ path: String) -> Bool {
        guard var addr = try? address(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return rc == 0
    }

    /// The peer's pid and uid as the kernel knows them.
    static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32) {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (hidden behind _GNU_SOURCE in Glibc's headers)
        var cred: (pid: Int32, uid: UInt32, gid: UInt32) = (0, .max, .max)
        var len = socklen_t(12)
        if getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 { return (cred.pid, cred.uid) }
        return (0, UInt32.max)
    }
}
