#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call: its name and errno, translated to text in one place.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    public let path: String?

    public init(_ call: String, errno: Int32 = Glibc.errno, path: String? = nil) {
        self.call = call
        self.errno = errno
        self.path = path
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let path { return "\(call)(\(path)): \(reason)" }
        return "\(call): \(reason)"
    }
}

package enum Posix {
    /// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write")
            }
            offset += n
        }
    }

    /// Writes the pieces in order with writev (up to IOV_MAX at a time), through short writes.
    package static func writeAll(_ fd: Int32, _ pieces: [UnsafeRawBufferPointer]) throws(SystemError) {
        var vectors = pieces.filter { !$0.isEmpty }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var first = 0
        while first < vectors.count {
            let n = vectors.withUnsafeMutableBufferPointer { v in writev(fd, v.baseAddress! + first, Int32(min(v.count - first, 1024))) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write")
            }
            var left = n
            while first < vectors.count, left >= vectors[first].iov_len {
                left -= vectors[first].iov_len
                first += 1
            }
            if left > 0 {
                vectors[first].iov_base += left
                vectors[first].iov_len -= left
            }
        }
    }

    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        let r = bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try writeAll(fd, raw) } }
        try r.get()
    }

    package static func fsyncOrThrow(_ fd: Int32) throws(SystemError) {
        if fsync(fd) != 0 { throw SystemError("fsync") }
    }

    /// Opens a directory below `dirfd` without following a symlink at the last component.
    package static func openDirectory(_ dirfd: Int32, _ name: String) throws(SystemError) -> Int32 {
        let fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: name) }
        return fd
    }

    /// Opens `a/b/…` below `dirfd` one component at a time, following no symlink.
    package static func openPath(_ dirfd: Int32, _ path: String) throws(SystemError) -> Int32 {
        var fd = dirfd
        for part in path.split(separator: "/") {
            let next: Int32
            do { next = try openDirectory(fd, String(part)) } catch {
                if fd != dirfd { close(fd) }
                throw error
            }
            if fd != dirfd { close(fd) }
            fd = next
        }
        return fd == dirfd ? dup(dirfd) : fd
    }

    /// Creates (if missing) and opens a directory below `dirfd`; never follows a symlink.
    /// The default mode leaves the choice to the umask (logd sets it from run_directory_mode).
    package static func makeDirectory(_ dirfd: Int32, _ name: String, mode: mode_t = 0o777) throws(SystemError) -> Int32 {
        if mkdirat(dirfd, name, mode) != 0, errno != EEXIST { throw SystemError("mkdir", path: name) }
        return try openDirectory(dirfd, name)
    }

    /// `mkdir -p` for an absolute or relative path given by the operator (config), not a client.
    package static func makeDirectories(_ path: String, mode: mode_t = 0o777) throws(SystemError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0, errno != EEXIST { throw SystemError("mkdir", path: current) }
        }
    }

    /// Reads a whole small file below `dirfd` (no symlinks followed); nil if it does not exist.
    /// Files longer than `limit` are refused (EFBIG): what a restart reads is bounded.
    package static func readFile(_ dirfd: Int32, _ name: String, limit: Int = 1 << 30) throws(SystemError) -> [UInt8]? {
        let fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SystemError("open", path: name)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path: name)
            }
            if n == 0 { break }
            if out.count + n > limit { throw SystemError("read", errno: EFBIG, path: name) }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Replaces `name` in `dirfd` atomically: temp file, fsync, rename, directory fsync.
    /// A crash leaves the old file or the new one, never half of one. `syncDirectory: false`
    /// leaves the directory fsync to the caller, who replaces several files and fsyncs the
    /// directory once (each name still reads as the old file or the new one after a crash).
    package static func replaceFile(
        _ dirfd: Int32, _ name: String, _ bytes: [UInt8], sync: Bool = true, syncDirectory: Bool = true
    ) throws(SystemError) {
        let r = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try replaceFile(dirfd, name, raw, sync: sync, syncDirectory: syncDirectory) }
        }
        try r.get()
    }

    package static func replaceFile(
        _ dirfd: Int32, _ name: String, _ bytes: UnsafeRawBufferPointer, sync: Bool = true, syncDirectory: Bool = true
    ) throws(SystemError) {
        let temp = ".\(name).tmp"
        if let fault = FaultPoints.writeError(name) { throw fault }
        let fd = openat(dirfd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o666)
        if fd < 0 { throw SystemError("open", path: temp) }
        do {
            try writeAll(fd, bytes)
            if sync { try fsyncOrThrow(fd) }
        } catch {
            close(fd)
            unlinkat(dirfd, temp, 0)
            throw error
        }
        close(fd)
        if renameat(dirfd, temp, dirfd, name) != 0 { throw SystemError("rename", path: name) }
        if sync && syncDirectory { try fsyncOrThrow(dirfd) }
    }

    /// Nanoseconds since the Unix epoch.
    package static func realtimeNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Nanoseconds on the monotonic clock.
    package static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
