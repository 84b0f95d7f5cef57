#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// An append-only text file that rotates by size: `main.log` is always the live segment, and
/// rotation renames it to the next numbered segment (`main.000001.log`, `main.000002.log`, …)
/// and opens a fresh `main.log`. Never copytruncate, so a line is never lost or duplicated.
///
/// Writer-confined. Lines are gathered in a user-space buffer and written by `drain()`.
final class RotatingFile {
    let dirfd: Int32
    let stem: String
    let ext: String
    /// Written at the top of every segment (the CSV header); empty for plain text.
    let header: [UInt8]
    let rotateBytes: Int
    /// Rotated segments to keep (0: all).
    let keepSegments: Int

    private(set) var fd: Int32 = -1
    /// Number of rotated segments so far: the live file becomes segment `rotated + 1` next.
    private(set) var rotated: Int = 0
    /// Bytes in the live file, including what is buffered.
    private(set) var size: Int = 0
    /// Lines not yet handed to write(): `pending` bytes at `buffer`, room for `capacity`. Raw
    /// storage, so a metrics.csv line is formatted in place (`lineStart`/`lineAppended`) with
    /// no copy and no uniqueness check per line.
    private(set) var buffer: UnsafeMutablePointer<UInt8>
    private(set) var pending = 0
    private var capacity: Int
    static let drainBytes = 256 << 10
    /// Whether bytes were written since the last fsync.
    private(set) var dirty = false
    /// A failed write could not be cut back: the file may hold a partial line past `size`.
    /// Nothing of it is acknowledged; a restart cuts the file back to the checkpoint.
    private(set) var broken = false

    var liveName: String { "\(stem).\(ext)" }
    func segmentName(_ n: Int) -> String {
        let digits = String(n)
        return "\(stem).\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits).\(ext)"
    }

    init(dirfd: Int32, stem: String, ext: String, header: [UInt8], rotateBytes: Int, keepSegments: Int) {
        self.dirfd = dirfd
        self.stem = stem
        self.ext = ext
        self.header = header
        self.rotateBytes = rotateBytes
        self.keepSegments = keepSegments
        capacity = RotatingFile.drainBytes + 4096
        buffer = .allocate(capacity: capacity)
    }

    deinit { buffer.deallocate() }

    /// Where the next line goes, with room for `bytes`; write it there, then `lineAppended`.
    @inline(__always)
    func lineStart(reserving bytes: Int) -> UnsafeMutablePointer<UInt8> {
        if pending + bytes > capacity { grow(pending + bytes) }
        return buffer + pending
    }

    private func grow(_ needed: Int) {
        capacity = max(capacity * 2, needed)
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        bigger.update(from: buffer, count: pending)
        buffer.deallocate()
        buffer = bigger
    }

    /// Appends bytes that are not yet a whole line (main.log's pieces); `lineAppended` ends it.
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard let src = bytes.baseAddress, !bytes.isEmpty else { return }
        let p = lineStart(reserving: bytes.count)
        UnsafeMutableRawPointer(p).copyMemory(from: src, byteCount: bytes.count)
        pending += bytes.count
    }

    func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// Opens the live file, first undoing anything written after the checkpoint
    /// (`rotated` segments, `offset` bytes in the live file): segments rotated after it are
    /// folded back, and the live file is cut to `offset`. With no checkpoint, a fresh file.
    func open(checkpoint: (rotated: Int, offset: Int)?) throws(SystemError) {
        if let cp = checkpoint {
            // A rotation after the checkpoint renamed the checkpointed live file to segment cp.rotated+1.
            let next = segmentName(cp.rotated + 1)
            var st = stat()
            if fstatat(dirfd, next, &st, AT_SYMLINK_NOFOLLOW) == 0 {
                var n = cp.rotated + 2
                while fstatat(dirfd, segmentName(n), &st, AT_SYMLINK_NOFOLLOW) == 0 {
                    unlinkat(dirfd, segmentName(n), 0)
                    n += 1
                }
                if renameat(dirfd, next, dirfd, liveName) != 0 { throw SystemError("rename", path: next) }
            }
            fd = openat(dirfd, liveName, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd < 0 { throw SystemError("open", path: liveName) }
            // A checkpoint never covers more than the file holds; one that claims to (a corrupt
            // or hostile checkpoint) must not grow the file with zeros.
            var live = stat()
            guard fstat(fd, &live) == 0, Int(live.st_size) >= cp.offset else {
                close(fd)
                fd = -1
                throw SystemError("checkpoint offset beyond the end of", errno: EINVAL, path: liveName)
            }
            if ftruncate(fd, off_t(cp.offset)) != 0 { throw SystemError("ftruncate", path: liveName) }
            rotated = cp.rotated
            size = cp.offset
            if size == 0, !header.isEmpty {
                append(header)
                size = header.count
            }
        } else {
            fd = openat(dirfd, liveName, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd < 0 { throw SystemError("open", path: liveName) }
            rotated = 0
            append(header)
            size = header.count
        }
        dirty = true
    }

    /// Call after writing one whole line of `bytes` at `lineStart` (`written`: true), or after
    /// `append`ing its pieces (`written`: false): rotates when the live file has reached the
    /// limit, so lines never straddle segments.
    @inline(__always)
    func lineAppended(_ bytes: Int, written: Bool = false) throws(SystemError) {
        if written { pending += bytes }
        size += bytes
        if size >= rotateBytes { try rotate() } else if pending >= RotatingFile.drainBytes { try drain() }
    }

    /// Hands the buffered lines to the kernel. All or nothing: when a write fails part way
    /// (ENOSPC, EIO), the file is cut back to where this drain began and the lines stay in the
    /// buffer for the next try, so the file never holds a torn line or, after a retry, a line twice.
    func drain() throws(SystemError) {
        guard pending > 0 else { return }
        let base = size - pending
        do throws(SystemError) {
            if let fault = FaultPoints.writeError(stem) { throw fault }
            try Posix.writeAll(fd, UnsafeRawBufferPointer(start: buffer, count: pending))
        } catch {
            if ftruncate(fd, off_t(base)) != 0 {
                // Could not cut back: keep nothing of this drain's bytes either way by reopening
                // at the last checkpoint on restart (the writer stops acknowledging).
                broken = true
            }
            throw error
        }
        pending = 0
        if capacity > 4 * RotatingFile.drainBytes {  // one huge line grew it: give it back
            buffer.deallocate()
            capacity = RotatingFile.drainBytes + 4096
            buffer = .allocate(capacity: capacity)
        }
        dirty = true
    }

    func sync() throws(SystemError) {
        if broken { throw SystemError("write", errno: EIO, path: liveName) }
        try drain()
        if dirty {
            try Posix.fsyncOrThrow(fd)
            dirty = false
        }
    }

    func rotate() throws(SystemError) {
        try drain()
        try Posix.fsyncOrThrow(fd)
        close(fd)
        fd = -1
        let segment = segmentName(rotated + 1)
        if renameat(dirfd, liveName, dirfd, segment) != 0 { throw SystemError("rename", path: segment) }
        rotated += 1
        if keepSegments > 0, rotated > keepSegments {
            unlinkat(dirfd, segmentName(rotated - keepSegments), 0)
        }
        fd = openat(dirfd, liveName, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o666)
        if fd < 0 { throw SystemError("open", path: liveName) }
        append(header)
        size = header.count
        dirty = true
    }

    func closeFile() {
        if fd >= 0 {
            try? sync()
            close(fd)
            fd = -1
        }
    }
}
