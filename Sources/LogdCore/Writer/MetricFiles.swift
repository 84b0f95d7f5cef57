#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// `metrics/<key>_<context>_<source>.csv`: one file per metric entity of prov.json (per
/// (context, key)), derived from the run's metrics.csv segments when the run ends, so
/// yProv4ML 3.x's `get_metric(prov.json, key, context, source)` finds the samples: it opens the
/// file whose `dcterms:identifier` contains `<key>_<context>_<source>`, one file per metric as
/// yProv4ML itself writes them, in its CSV columns `epoch,value,timestep` (plus logd's `rank`
/// and `source`). Nothing on the per-record path: the files are written at the run's end on
/// the writer thread (`Writer.endRun`, also for runs recovery finishes), streaming the segments
/// in chunks with bounded memory, and rewritten whole at every end (a reopened run's next end).
/// They are derived data: metrics.csv stays the record.
///
/// Each file is written to `.<name>.tmp`, fsynced, renamed over `<name>`; the directory is
/// fsynced once at the end. A failure removes the files it could not replace (prov.json then
/// points at metrics.csv for them) and is reported to the caller.
enum MetricFiles {
    static let directory = "metrics"
    static let header = Array("epoch,value,timestep,rank,source\n".utf8)
    /// Bytes read from a segment at a time.
    static let readBytes = 1 << 20
    /// A file's buffered rows are written out past this many bytes…
    static let fileFlushBytes = 256 << 10
    /// …and every file's are past this many in all (the memory bound, whatever the key count).
    static let totalFlushBytes = 16 << 20

    /// yProv4ML's `yprov:source` of a metric: its sources comma-separated, or `None`.
    static func sourceLabel(_ s: MetricSummary) -> String {
        s.sources.isEmpty ? "None" : s.sources.joined(separator: ",")
    }

    /// The file name of each summary's metric file, in summary order: `<key>_<context>_<source>`
    /// made one safe path component (PathNames), `_2`, `_3`, … when two names clash, `.csv`.
    /// A function of the summaries alone (they only ever grow at the end), so prov.json and
    /// the writer agree on the names without storing them.
    static func names(_ summaries: [MetricSummary]) -> [String] {
        var used: Set<String> = []
        var out: [String] = []
        out.reserveCapacity(summaries.count)
        for s in summaries {
            let base = PathNames.component("\(s.key)_\(s.context)_\(sourceLabel(s))", fallback: "metric")
            var name = base
            var n = 1
            while used.contains(name) {
                n += 1
                name = base + "_\(n)"
            }
            used.insert(name)
            out.append(name + ".csv")
        }
        return out
    }

    /// The sizes of the run's metric files that exist (nil for a missing one), in summary order.
    static func existingSizes(_ run: RunFiles, names: [String]) -> [Int64?] {
        let fd = openat(run.dirfd, directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return Array(repeating: nil, count: names.count) }
        defer { close(fd) }
        return names.map { name in
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
            return Int64(st.st_size)
        }
    }

    /// Writes every metric file of `run` from its metrics.csv segments (oldest first, then the
    /// live file, which must be drained). Returns the number of rows written.
    @discardableResult
    static func write(_ run: RunFiles) throws(SystemError) -> UInt64 {
        FaultPoints.hit("before-metric-files")
        let names = names(run.summaries)
        guard !names.isEmpty else { return 0 }
        let dirfd = try Posix.makeDirectory(run.dirfd, directory)
        defer { close(dirfd) }
        var out = Output(dirfd: dirfd, names: names)
        do throws(SystemError) {
            var splitter = Splitter(run: run)
            defer { splitter.release() }
            var segments = (0..<run.metrics.rotated).map { run.metrics.segmentName($0 + 1) }
            segments.append(run.metrics.liveName)
            for segment in segments {
                let fd = openat(run.dirfd, segment, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 {
                    if errno == ENOENT { continue }
                    throw SystemError("open", path: segment)
                }
                defer { close(fd) }
                try splitter.read(fd, path: segment, into: &out)
            }
            try out.finish()
            return splitter.rows
        } catch {
            out.abandon()
            throw error
        }
    }

    /// The per-file buffers and temp files.
    struct Output {
        let dirfd: Int32
        let names: [String]
        var buffers: [[UInt8]]
        /// Whether `.<name>.tmp` was created (this run of `write`).
        var started: [Bool]
        var buffered = 0

        init(dirfd: Int32, names: [String]) {
            self.dirfd = dirfd
            self.names = names
            buffers = Array(repeating: MetricFiles.header, count: names.count)
            started = Array(repeating: false, count: names.count)
            buffered = MetricFiles.header.count * names.count
        }

        func temp(_ i: Int) -> String { ".\(names[i]).tmp" }

        /// Appends one row to file `i`.
        @inline(__always)
        mutating func append(
            _ i: Int, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer,
            _ d: UnsafeRawBufferPointer, _ e: UnsafeRawBufferPointer
        ) throws(SystemError) {
            let before = buffers[i].count
            buffers[i].append(contentsOf: a)
            buffers[i].append(0x2C)
            buffers[i].append(contentsOf: b)
            buffers[i].append(0x2C)
            buffers[i].append(contentsOf: c)
            buffers[i].append(0x2C)
            buffers[i].append(contentsOf: d)
            buffers[i].append(0x2C)
            buffers[i].append(contentsOf: e)
            buffers[i].append(0x0A)
            buffered += buffers[i].count - before
            if buffers[i].count >= MetricFiles.fileFlushBytes {
                try flush(i)
            } else if buffered >= MetricFiles.totalFlushBytes {
                for j in buffers.indices where !buffers[j].isEmpty { try flush(j) }
            }
        }

        /// Writes file `i`'s buffered bytes to its temp file (opened per flush, so thousands of
        /// keys never hold thousands of descriptors).
        mutating func flush(_ i: Int) throws(SystemError) {
            let flags = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (started[i] ? 0 : O_TRUNC)
            let fd = openat(dirfd, temp(i), flags, 0o666)
            if fd < 0 { throw SystemError("open", path: MetricFiles.directory + "/" + temp(i)) }
            defer { close(fd) }
            started[i] = true
            try Posix.writeAll(fd, buffers[i])
            buffered -= buffers[i].count
            buffers[i].removeAll(keepingCapacity: false)
        }

        /// Every file complete: fsync each, rename it over its name, fsync the directory.
        mutating func finish() throws(SystemError) {
            for i in names.indices {
                if !started[i] {
                    // Small enough to have stayed in memory: written whole, like every snapshot.
                    try Posix.replaceFile(dirfd, names[i], buffers[i], sync: false)
                    buffers[i] = []
                } else {
                    try flush(i)
                    if renameat(dirfd, temp(i), dirfd, names[i]) != 0 { throw SystemError("rename", path: names[i]) }
                }
                started[i] = false
            }
            // One fsync per file and one for the directory: the files are final only now.
            for name in names {
                let fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 { throw SystemError("open", path: MetricFiles.directory + "/" + name) }
                defer { close(fd) }
                try Posix.fsyncOrThrow(fd)
            }
            try Posix.fsyncOrThrow(dirfd)
        }

        /// A failure: no temp file stays, and no file stays that may be stale or partial.
        func abandon() {
            for i in names.indices {
                unlinkat(dirfd, temp(i), 0)
                unlinkat(dirfd, names[i], 0)
            }
        }
    }

    /// Splits metrics.csv rows (RFC 4180, LF ends, quoted fields may hold `,` and LF) and hands
    /// each to its metric's file. The (context, key) of a row is looked up by the bytes of its
    /// two fields as written (a hash of them; the strings are decoded only on a new pair).
    struct Splitter {
        let run: RunFiles
        var rows: UInt64 = 0
        /// FNV-1a of the raw `context,key` bytes → (those bytes, summary index or -1).
        var known: [UInt64: [([UInt8], Int)]] = [:]
        var buffer: UnsafeMutableRawBufferPointer

        init(run: RunFiles) {
            self.run = run
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: MetricFiles.readBytes, alignment: 64)
        }

        /// Reads one segment to its end; an incomplete last row (no LF) is left out.
        mutating func read(_ fd: Int32, path: String, into out: inout Output) throws(SystemError) {
            var filled = 0
            var first = true
            while true {
                if filled == buffer.count {
                    // One row longer than the buffer: grow it.
                    let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 64)
                    bigger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                    buffer.deallocate()
                    buffer = bigger
                }
                let n = Glibc.read(fd, buffer.baseAddress! + filled, buffer.count - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemError("read", path: path)
                }
                if n == 0 { return }
                filled += n
                let used = try rows(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]), skipHeader: &first, into: &out)
                if used > 0 {
                    let rest = filled - used
                    if rest > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + used, rest) }
                    filled = rest
                }
            }
        }

        /// Handles every complete row of `bytes`; returns the bytes they took.
        private mutating func rows(_ bytes: UnsafeRawBufferPointer, skipHeader: inout Bool, into out: inout Output) throws(SystemError) -> Int {
            var start = 0
            var i = 0
            var quoted = false
            // Field boundaries of the current row: start of each field and the comma/LF after it.
            var fields = [Int](repeating: 0, count: 16)
            var count = 0
            fields[0] = 0
            let n = bytes.count
            while i < n {
                let b = bytes[i]
                if quoted {
                    if b == 0x22 { quoted = false }  // a doubled quote re-enters on the next byte
                } else if b == 0x22 {
                    quoted = true
                } else if b == 0x2C {
                    if count < 14 {
                        count += 1
                        fields[count] = i + 1
                    }
                } else if b == 0x0A {
                    if count < 14 {
                        count += 1
                        fields[count] = i + 1
                    }
                    if skipHeader {
                        skipHeader = false
                    } else if count == 7 {
                        try row(bytes, fields, into: &out)
                    }
                    start = i + 1
                    count = 0
                    fields[0] = start
                }
                i += 1
            }
            return start
        }

        /// One row of 7 fields: time, step, context, key, value, rank, source.
        private mutating func row(_ bytes: UnsafeRawBufferPointer, _ f: [Int], into out: inout Output) throws(SystemError) {
            func field(_ k: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[f[k]..<(f[k + 1] - 1)]) }
            let pair = UnsafeRawBufferPointer(rebasing: bytes[f[2]..<(f[4] - 1)])
            let index = summary(pair, context: field(2), key: field(3))
            guard index >= 0 else { return }
            rows += 1
            try out.append(index, field(1), field(4), field(0), field(5), field(6))
        }

        private mutating func summary(_ pair: UnsafeRawBufferPointer, context: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> Int {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for b in pair { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
            if let list = known[h] {
                for (bytes, index) in list where bytes.elementsEqual(pair) { return index }
            }
            let k = SummaryKey(context: Splitter.unquote(context), key: Splitter.unquote(key))
            let index = run.summaryIndex[k] ?? -1
            known[h, default: []].append((Array(pair), index))
            return index
        }

        static func unquote(_ field: UnsafeRawBufferPointer) -> String {
            guard field.first == 0x22, field.count >= 2, field.last == 0x22 else { return String(decoding: field, as: UTF8.self) }
            var out: [UInt8] = []
            out.reserveCapacity(field.count)
            var i = 1
            while i < field.count - 1 {
                let b = field[i]
                out.append(b)
                if b == 0x22 { i += 1 }  // `""` is one quote
                i += 1
            }
            return String(decoding: out, as: UTF8.self)
        }

        func release() { buffer.deallocate() }
    }
}
