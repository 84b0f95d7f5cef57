#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// Reads a rotating file of a run — `main.log` or `metrics.csv` with its numbered segments —
/// as one stream of whole lines, oldest segment first, and follows it across rotations.
///
/// logd rotates by renaming the live file to the next numbered segment and opening a new live
/// file (never copytruncate). The follower keeps the live file open; when `<stem>.<ext>` names
/// another inode, its file was renamed: it reads the rest of that file (complete now), then
/// every numbered segment after it (rotations it missed between two polls), then opens the new
/// live file. Each line is returned exactly once. A last line without its `\n` is held back
/// until it is complete. With `skipRepeatedHeaders` (metrics.csv) the first line of every file
/// after the first is left out: every segment starts with the same header.
public final class SegmentFollower {
    public let directory: String
    public let stem: String
    public let ext: String
    public let skipRepeatedHeaders: Bool

    private var fd: Int32 = -1
    private var inode: ino_t = 0
    private var device: dev_t = 0
    private var offset: Int64 = 0
    /// The highest segment number read completely (or known to be the live file's past).
    private var lastSegment: UInt64 = 0
    private var pending: [UInt8] = []
    private var atFileStart = true
    private var headerSeen = false

    public init(directory: String, stem: String, ext: String, skipRepeatedHeaders: Bool = false) {
        self.directory = directory
        self.stem = stem
        self.ext = ext
        self.skipRepeatedHeaders = skipRepeatedHeaders
    }

    deinit { if fd >= 0 { close(fd) } }

    private var livePath: String { directory + "/" + stem + "." + ext }

    /// Every whole line that became available since the last call (the first call: everything).
    public func poll() -> [UInt8] {
        var out: [UInt8] = []
        if fd < 0 {
            readNewSegments(into: &out)
            openLive(into: &out)
            if fd < 0 { return out }
        }
        drain(into: &out)
        guard let live = FS.statInfo(livePath) else { return out }  // between rename and reopen
        if live.st_ino != inode || live.st_dev != device {
            // Our file was renamed to a segment: it is complete now.
            drain(into: &out)
            finishFile(into: &out)
            let mine = RunDirectory.segments(in: directory, stem: stem, ext: ext).first { s in
                guard let st = FS.statInfo(s.path) else { return false }
                return st.st_ino == inode && st.st_dev == device
            }
            lastSegment = max(lastSegment, mine?.number ?? lastSegment + 1)
            close(fd)
            fd = -1
            readNewSegments(into: &out)
            openLive(into: &out)
            if fd >= 0 { drain(into: &out) }
        }
        return out
    }

    /// Numbered segments after `lastSegment`, each read whole.
    private func readNewSegments(into out: inout [UInt8]) {
        for s in RunDirectory.segments(in: directory, stem: stem, ext: ext) where s.number > lastSegment {
            if let bytes = FS.read(s.path) {
                atFileStart = true
                emit(bytes, into: &out)
                finishFile(into: &out)
            }
            lastSegment = s.number
        }
    }

    /// Opens the live file; if segments appeared meanwhile (a rotation between listing and
    /// opening), reads them and tries again.
    private func openLive(into out: inout [UInt8]) {
        while true {
            let f = open(livePath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard f >= 0 else { return }
            var st = stat()
            fstat(f, &st)
            let newer = RunDirectory.segments(in: directory, stem: stem, ext: ext).filter { $0.number > lastSegment }
            if newer.isEmpty {
                fd = f
                inode = st.st_ino
                device = st.st_dev
                offset = 0
                atFileStart = true
                return
            }
            close(f)
            readNewSegments(into: &out)
        }
    }

    private func drain(into out: inout [UInt8]) {
        var st = stat()
        if fstat(fd, &st) == 0, Int64(st.st_size) < offset {
            // Cut back (a daemon restart truncates to its checkpoint): continue from the new end.
            offset = Int64(st.st_size)
            lseek(fd, off_t(offset), SEEK_SET)
            pending.removeAll()
        }
        let bytes = FS.readAll(fd)
        offset += Int64(bytes.count)
        emit(bytes, into: &out)
    }

    /// A file ended: a last line without `\n` is complete as far as it goes.
    private func finishFile(into out: inout [UInt8]) {
        if !pending.isEmpty {
            pending.append(0x0A)
            let line = pending
            pending.removeAll()
            emitLine(line, into: &out)
        }
    }

    private func emit(_ bytes: [UInt8], into out: inout [UInt8]) {
        var start = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            if pending.isEmpty {
                emitLine(bytes[start...i], into: &out)
            } else {
                pending.append(contentsOf: bytes[start...i])
                let line = pending
                pending.removeAll()
                emitLine(line[...], into: &out)
            }
            start = i + 1
        }
        if start < bytes.count { pending.append(contentsOf: bytes[start...]) }
    }

    private func emitLine(_ line: ArraySlice<UInt8>, into out: inout [UInt8]) {
        if atFileStart {
            atFileStart = false
            if skipRepeatedHeaders {
                if headerSeen { return }
                headerSeen = true
            }
        }
        out.append(contentsOf: line)
    }

    private func emitLine(_ line: [UInt8], into out: inout [UInt8]) { emitLine(line[...], into: &out) }
}
