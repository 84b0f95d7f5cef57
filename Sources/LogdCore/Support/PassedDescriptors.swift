#if canImport(Glibc)
    import Glibc
#endif
import CLibUV  // the socket flag constants (MSG_*) as glibc's <sys/socket.h> declares them with _GNU_SOURCE
import LogdSystem

/// A file descriptor a client passed with SCM_RIGHTS, owned by exactly one holder at a time:
/// whoever drops the last reference without `take()`-ing it closes it. So a descriptor never
/// leaks, whichever path a record takes (a duplicate frame, a closed connection, a run that
/// could not be created, a daemon that stops).
///
/// Thread-safe to hand over through a locked queue (the lock orders the accesses); `take()` is
/// called once, by the thread that uses the descriptor.
final class PassedFD: @unchecked Sendable {
    private var fd: Int32

    init(_ fd: Int32) { self.fd = fd }

    /// The descriptor, which the caller now owns (and must close).
    func take() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    deinit { if fd >= 0 { close(fd) } }
}

/// Passing open file descriptors over a Unix stream socket (SCM_RIGHTS), both ways.
public enum DescriptorPassing {
    /// Room for this many descriptors in one recvmsg (a well-behaved client sends one per
    /// sendmsg; more makes the kernel truncate, which the caller treats as a violation).
    static let maxPerMessage = 16

    static var controlBytes: Int { cmsgSpace(maxPerMessage * MemoryLayout<Int32>.size) }

    static func cmsgAlign(_ n: Int) -> Int {
        let a = MemoryLayout<Int>.size
        return (n + a - 1) & ~(a - 1)
    }

    static func cmsgSpace(_ dataBytes: Int) -> Int { cmsgAlign(MemoryLayout<cmsghdr>.size) + cmsgAlign(dataBytes) }
    static func cmsgLen(_ dataBytes: Int) -> Int { cmsgAlign(MemoryLayout<cmsghdr>.size) + dataBytes }

    struct Received {
        /// Bytes read (0: end of stream; -1: error, see `errno`).
        var count: Int
        var fds: [Int32]
        /// The kernel dropped descriptors that did not fit the control buffer.
        var truncated: Bool
    }

    /// One nonblocking recvmsg into `buffer`, collecting passed descriptors (close-on-exec).
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, control: UnsafeMutableRawPointer)
        -> Received
    {
        var iov = iovec(iov_base: buffer, iov_len: count)
        let controlSize = controlBytes  // the kernel sets msg_controllen to what it filled
        let (n, controlLength, truncated) = withUnsafeMutablePointer(to: &iov) { iovp -> (Int, Int, Bool) in
            var msg = msghdr()
            msg.msg_iov = iovp
            msg.msg_iovlen = 1
            msg.msg_control = control
            msg.msg_controllen = controlSize
            let n = recvmsg(fd, &msg, Int32(MSG_DONTWAIT) | Int32(MSG_CMSG_CLOEXEC))
            return (n, n < 0 ? 0 : Int(msg.msg_controllen), n >= 0 && msg.msg_flags & Int32(MSG_CTRUNC) != 0)
        }
        if n < 0 { return Received(count: n, fds: [], truncated: false) }
        return Received(count: n, fds: parseRights(control, length: controlLength), truncated: truncated)
    }

    /// The descriptors in the SCM_RIGHTS messages of a control buffer.
    static func parseRights(_ control: UnsafeMutableRawPointer, length: Int) -> [Int32] {
        var fds: [Int32] = []
        let header = MemoryLayout<cmsghdr>.size
        var offset = 0
        while offset + header <= length {
            let h = control.load(fromByteOffset: offset, as: cmsghdr.self)
            let len = Int(h.cmsg_len)
            guard len >= header, offset + len <= length else { break }
            if h.cmsg_level == SOL_SOCKET, h.cmsg_type == Int32(SCM_RIGHTS) {
                let dataStart = offset + cmsgAlign(header)
                let n = (offset + len - dataStart) / MemoryLayout<Int32>.size
                for i in 0..<max(0, n) {
                    fds.append(control.loadUnaligned(fromByteOffset: dataStart + i * 4, as: Int32.self))
                }
            }
            offset += cmsgAlign(len)
        }
        return fds
    }

    /// Sends `bytes` with `fd` attached (SCM_RIGHTS) on the first sendmsg; blocking. For tests
    /// and tools (a producer passing an artifact's descriptor). Returns false on failure.
    public static func send(_ socket: Int32, _ bytes: [UInt8], passing fd: Int32?) -> Bool {
        var offset = 0
        var pass = fd
        while offset < bytes.count || pass != nil {
            let n: Int = bytes.withUnsafeBytes { raw in
                var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + offset), iov_len: raw.count - offset)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    guard let passing = pass else { return sendmsg(socket, &msg, Int32(MSG_NOSIGNAL)) }
                    let space = cmsgSpace(4)
                    let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: 8)
                    defer { control.deallocate() }
                    memset(control, 0, space)
                    var h = cmsghdr()
                    h.cmsg_len = cmsgLen(4)
                    h.cmsg_level = SOL_SOCKET
                    h.cmsg_type = Int32(SCM_RIGHTS)
                    control.storeBytes(of: h, as: cmsghdr.self)
                    control.storeBytes(of: passing, toByteOffset: cmsgAlign(MemoryLayout<cmsghdr>.size), as: Int32.self)
                    msg.msg_control = control
                    msg.msg_controllen = space
                    return sendmsg(socket, &msg, Int32(MSG_NOSIGNAL))
                }
            }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            pass = nil
            offset += n
            if bytes.isEmpty { break }
        }
        return true
    }
}
