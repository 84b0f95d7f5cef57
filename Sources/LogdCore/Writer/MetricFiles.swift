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

    /// Writes every metric file of `run`: from the rows collected as its metrics arrived
    /// (`KeyRows`), else from its metrics.csv segments (oldest first, then the live file, which
    /// must be drained). Returns the number of rows written and whether they were collected.
    @discardableResult
    static func write(_ run: RunFiles) throws(SystemError) -> (rows: UInt64, collected: Bool) {
        FaultPoints.hit("before-metric-files")
        let names = names(run.summaries)
        let rows = run.keyRows
        run.keyRows = nil  // used once: a reopened run's next end splits its whole metrics.csv
        guard !names.isEmpty else {
            rows?.abandon()
            return (0, false)
        }
        let dirfd = try Posix.makeDirectory(run.dirfd, directory)
        defer { close(dirfd) }
        if let rows, rows.usable {
            var out = Output(dirfd: dirfd, names: names)
            do throws(SystemError) {
                return (try rows.finish(into: &out), true)
            } catch {
                out.abandon()
                rows.abandon()  // and split metrics.csv instead
            }
        }
        KeyRows.removeTemps(dirfd)
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
            return (splitter.rows, false)
        } catch {
            out.abandon()
            throw error
        }
    }

    /// The per-key rows of a run collected as its metrics arrive (the metrics.csv line's fields
    /// in another order), so the run's end only sorts chunks instead of parsing metrics.csv
    /// (callgrind: the split cost ~700 instructions per record). Only for a run created by this
    /// process and never reopened; anything else — a crash, a recovery, a reopen, a failed write —
    /// falls back to the split. Rows are buffered per key; past `runBytes` for the run (or
    /// `totalBytes` for every run together) each key's buffered rows are appended to one journal,
    /// `metrics/.keyrows.journal.tmp`, as `[u32 key][u32 length][rows]` chunks: one write for
    /// any number of keys (one temp file per key cost 10,000 opens per round at 10,000 keys). At
    /// the end the journal's chunks, then what is still buffered, go to the files in order.
    final class KeyRows {
        static let runBytes = 2 << 20
        static let totalBytes = 32 << 20
        static let journalName = ".keyrows.journal.tmp"
        nonisolated(unsafe) static var buffered = 0  // writer-confined

        let rundirfd: Int32
        /// Each key's rows (by summary index): raw slots, so the writer appends through a
        /// pointer with no retain or uniqueness check (`slot(_:)`). A slot of capacity 0 is unused.
        private var slots: UnsafeMutablePointer<RowBuffer> = .allocate(capacity: 0)
        private var slotCount = 0
        private var runBuffered = 0
        /// Whether `runBuffered` counts in the writer's `buffered` (until `detach`).
        private var counted = true
        private var journaled = false
        private(set) var usable = true
        private(set) var count: UInt64 = 0

        init(rundirfd: Int32) { self.rundirfd = rundirfd }

        deinit {
            uncount()
            freeSlots()
        }

        private func uncount() {
            if counted { KeyRows.buffered -= runBuffered }
            runBuffered = 0
        }

        /// The run ended and goes to the finisher thread: its rows leave the writer's count
        /// now (`buffered` is writer-confined), while the finisher still holds them. Finishing
        /// runs can so hold at most another `totalBytes` beside the open runs'.
        func detach() {
            uncount()
            counted = false
        }

        private func freeSlots() {
            for i in 0..<slotCount where slots[i].capacity > 0 { slots[i].base.deallocate() }
            slots.deallocate()
            slots = .allocate(capacity: 0)
            slotCount = 0
        }

        /// Key `summary`'s rows, to append rows to (`RowBuffer.appendRow`, then `added`); valid
        /// until the next call. Nil once collecting was abandoned.
        @inline(__always)
        func slot(_ summary: Int) -> UnsafeMutablePointer<RowBuffer>? {
            guard usable else { return nil }
            if summary >= slotCount { growSlots(summary + 1) }
            if slots[summary].capacity == 0 { slots[summary] = RowBuffer(capacity: 256) }
            return slots + summary
        }

        private func growSlots(_ needed: Int) {
            let count = Swift.max(needed, 2 * slotCount, 16)
            let bigger = UnsafeMutablePointer<RowBuffer>.allocate(capacity: count)
            bigger.moveInitialize(from: slots, count: slotCount)
            (bigger + slotCount).initialize(repeating: RowBuffer.unused, count: count - slotCount)
            slots.deallocate()
            slots = bigger
            slotCount = count
        }

        /// Bytes that may be appended before `added` must be told (it writes the journal then).
        var budget: Int { Swift.min(KeyRows.runBytes - runBuffered, KeyRows.totalBytes - KeyRows.buffered) }

        /// `n` rows of `bytes` were appended through `slot(_:)`: past the budget, the journal.
        func added(rows n: Int, bytes: Int) {
            guard usable else { return }
            count += UInt64(n)
            runBuffered += bytes
            KeyRows.buffered += bytes
            if runBuffered >= KeyRows.runBytes || KeyRows.buffered >= KeyRows.totalBytes {
                do { try writeJournal() } catch { abandon() }
            }
        }

        /// Appends every key's buffered rows to the journal in one write.
        private func writeJournal() throws(SystemError) {
            guard runBuffered > 0 else { return }
            // `[u32 key][u32 length]` before each key's rows, written with the rows in place.
            var headers: [UInt32] = []
            var chunks: [UnsafeRawBufferPointer] = []
            for i in 0..<slotCount where slots[i].count > 0 {
                headers.append(UInt32(i).littleEndian)
                headers.append(UInt32(slots[i].count).littleEndian)
                chunks.append(UnsafeRawBufferPointer(slots[i].bytes))
            }
            let dirfd = try Posix.makeDirectory(rundirfd, MetricFiles.directory)
            defer { close(dirfd) }
            let flags = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (journaled ? 0 : O_TRUNC)
            let fd = openat(dirfd, KeyRows.journalName, flags, 0o666)
            if fd < 0 { throw SystemError("open", path: MetricFiles.directory + "/" + KeyRows.journalName) }
            defer { close(fd) }
            journaled = true
            let r = headers.withUnsafeBytes { h in
                Result { () throws(SystemError) in
                    var pieces: [UnsafeRawBufferPointer] = []
                    pieces.reserveCapacity(2 * chunks.count)
                    for (j, chunk) in chunks.enumerated() {
                        pieces.append(UnsafeRawBufferPointer(rebasing: h[(8 * j)..<(8 * j + 8)]))
                        pieces.append(chunk)
                    }
                    try Posix.writeAll(fd, pieces)
                }
            }
            for i in 0..<slotCount {
                slots[i].journaled += slots[i].count
                slots[i].count = 0
            }
            uncount()
            try r.get()
        }

        /// The run ended: the journal's chunks, then the rows still buffered, into `out`'s files.
        func finish(into out: inout Output) throws(SystemError) -> UInt64 {
            for i in 0..<Swift.min(slotCount, out.names.count) { out.reserve(i, slots[i].journaled + slots[i].count) }
            if journaled {
                let fd = openat(out.dirfd, KeyRows.journalName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 { throw SystemError("open", path: MetricFiles.directory + "/" + KeyRows.journalName) }
                defer { close(fd) }
                // Read in big blocks (a journal of many keys holds many small chunks), each chunk's
                // rows handed on as they lie in the block: a file's rows are a plain byte stream.
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 8)
                defer { buffer.deallocate() }
                var start = 0
                var filled = 0
                /// Makes at least `count` (at most 8) bytes available at `start`; false at the end.
                func available(_ count: Int) throws(SystemError) -> Bool {
                    if filled - start >= count { return true }
                    if start > 0 {
                        buffer.copyMemory(from: buffer + start, byteCount: filled - start)
                        filled -= start
                        start = 0
                    }
                    filled += try KeyRows.read(fd, buffer + filled, capacity: (1 << 20) - filled, atLeast: count - filled)
                    return filled >= count
                }
                while try available(8) {
                    let key = Int(UInt32(littleEndian: (buffer + start).loadUnaligned(as: UInt32.self)))
                    var left = Int(UInt32(littleEndian: (buffer + start).loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
                    guard key < out.names.count, left <= KeyRows.runBytes + (1 << 20) else {
                        throw SystemError("read", errno: EIO, path: KeyRows.journalName)
                    }
                    start += 8
                    while left > 0 {
                        guard try available(1) else { throw SystemError("read", errno: EIO, path: KeyRows.journalName) }
                        let piece = Swift.min(left, filled - start)
                        try out.appendRows(key, UnsafeRawBufferPointer(start: buffer + start, count: piece))
                        start += piece
                        left -= piece
                    }
                }
                guard filled == start else { throw SystemError("read", errno: EIO, path: KeyRows.journalName) }
            }
            for i in 0..<slotCount where slots[i].count > 0 && i < out.names.count {
                try out.appendRows(i, UnsafeRawBufferPointer(slots[i].bytes))
            }
            try out.finish()
            unlinkat(out.dirfd, KeyRows.journalName, 0)
            uncount()
            return count
        }

        /// Stops collecting and removes the journal: the run's end splits metrics.csv.
        func abandon() {
            guard usable else { return }
            usable = false
            uncount()
            freeSlots()
            let dirfd = openat(rundirfd, MetricFiles.directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if dirfd >= 0 {
                KeyRows.removeTemps(dirfd)
                close(dirfd)
            }
        }

        /// Reads up to `capacity` bytes (at least `atLeast` unless the file ends first) from `fd`
        /// into `p`; returns the bytes read.
        static func read(_ fd: Int32, _ p: UnsafeMutableRawPointer, capacity: Int, atLeast: Int) throws(SystemError) -> Int {
            var done = 0
            while done < atLeast {
                let n = Glibc.read(fd, p + done, capacity - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemError("read", path: MetricFiles.directory + "/" + journalName)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }

        /// Removes the `.keyrows.*.tmp` journal (an abandoned or crashed run's).
        static func removeTemps(_ dirfd: Int32) {
            unlinkat(dirfd, journalName, 0)
        }
    }

    /// Rows not yet written, in raw memory managed by its owner (`Rows`, or a `KeyRows` slot):
    /// a row is a few stores (callgrind: `[[UInt8]]` appends cost ~400 instructions per row in
    /// uniqueness checks and generic code).
    struct RowBuffer {
        var base: UnsafeMutablePointer<UInt8>
        var count = 0
        var capacity: Int
        /// Bytes of these rows already in the journal (KeyRows), so the run's end sizes each
        /// file's buffer once.
        var journaled = 0

        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }

        private init(base: UnsafeMutablePointer<UInt8>) {
            self.base = base
            capacity = 0
        }

        /// A slot not in use: capacity 0, nothing to free.
        nonisolated(unsafe) static let unused = RowBuffer(base: .allocate(capacity: 1))

        var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

        @inline(__always)
        mutating func reserve(_ more: Int) {
            guard count + more > capacity else { return }
            capacity = max(capacity * 2, count + more)
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            bigger.update(from: base, count: count)
            base.deallocate()
            base = bigger
        }

        /// Appends the per-key row of the metrics.csv line at `line`, its fields at `f`
        /// (`step,value,time,rank,source`); returns its bytes. Fields of up to 32 bytes are
        /// copied as two 16-byte words (the line's buffer and this one keep that much slack).
        @inline(__always)
        mutating func appendRow(_ f: MetricLineFields, line: UnsafePointer<UInt8>) -> Int {
            let tail = f.lineBytes - f.valueEnd - 1  // `rank,source\n`
            reserve(f.lineBytes + 2 * ShortCopy.slack)
            let s = UnsafeRawPointer(line)
            let start = UnsafeMutableRawPointer(base + count)
            var p = ShortCopy.copy(start, s + f.timeEnd + 1, f.stepEnd - f.timeEnd - 1)
            p.storeBytes(of: 0x2C, as: UInt8.self)
            p = ShortCopy.copy(p + 1, s + f.valueStart, f.valueEnd - f.valueStart)
            p.storeBytes(of: 0x2C, as: UInt8.self)
            p = ShortCopy.copy(p + 1, s, f.timeEnd)
            p.storeBytes(of: 0x2C, as: UInt8.self)
            p = ShortCopy.copy(p + 1, s + f.valueEnd + 1, tail)
            let added = p - start
            count += added
            return added
        }
    }

    /// One metric file's rows not yet written (the split's output buffers).
    final class Rows {
        private var storage: RowBuffer

        init(_ initial: [UInt8]) {
            storage = RowBuffer(capacity: max(256, initial.count))
            append(initial)
        }

        deinit { storage.base.deallocate() }

        var count: Int { storage.count }
        var bytes: UnsafeBufferPointer<UInt8> { storage.bytes }

        @inline(__always)
        func reserve(_ more: Int) { storage.reserve(more) }

        /// Appends one row: the fields joined by `,`, then LF.
        @inline(__always)
        func append(
            _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer, _ d: UnsafeRawBufferPointer,
            _ e: UnsafeRawBufferPointer
        ) {
            reserve(a.count + b.count + c.count + d.count + e.count + 5)
            var p = storage.base + storage.count
            @inline(__always) func put(_ f: UnsafeRawBufferPointer, _ end: UInt8) {
                if let src = f.baseAddress { memcpy(p, src, f.count) }
                p += f.count
                p.pointee = end
                p += 1
            }
            put(a, 0x2C)
            put(b, 0x2C)
            put(c, 0x2C)
            put(d, 0x2C)
            put(e, 0x0A)
            storage.count = p - storage.base
        }

        func append(_ bytes: UnsafeRawBufferPointer) {
            guard let src = bytes.baseAddress, !bytes.isEmpty else { return }
            reserve(bytes.count)
            UnsafeMutableRawPointer(storage.base + storage.count).copyMemory(from: src, byteCount: bytes.count)
            storage.count += bytes.count
        }

        func append(_ bytes: [UInt8]) {
            bytes.withUnsafeBufferPointer { src in
                reserve(src.count)
                if let s = src.baseAddress { (storage.base + storage.count).update(from: s, count: src.count) }
                storage.count += src.count
            }
        }

        func removeAll() { storage.count = 0 }
    }

    /// The per-file buffers and temp files.
    struct Output {
        let dirfd: Int32
        let names: [String]
        let buffers: [Rows]
        /// Whether `.<name>.tmp` was created (this run of `write`).
        var started: [Bool]
        var buffered = 0

        init(dirfd: Int32, names: [String]) {
            self.dirfd = dirfd
            self.names = names
            buffers = names.map { _ in Rows(MetricFiles.header) }
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
            let rows = buffers[i]
            let before = rows.count
            rows.append(a, b, c, d, e)
            buffered += rows.count - before
            if rows.count >= MetricFiles.fileFlushBytes {
                try flush(i)
            } else if buffered >= MetricFiles.totalFlushBytes {
                for j in buffers.indices where buffers[j].count > 0 { try flush(j) }
            }
        }

        /// Room for `bytes` more in file `i`'s buffer (up to what it holds before it is written).
        func reserve(_ i: Int, _ bytes: Int) {
            buffers[i].reserve(Swift.min(bytes, MetricFiles.fileFlushBytes))
        }

        /// Appends whole rows (a KeyRows chunk) to file `i`.
        mutating func appendRows(_ i: Int, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
            if bytes.count >= MetricFiles.fileFlushBytes {  // a journal chunk: no copy
                try flush(i)
                try write(i, bytes)
                return
            }
            let rows = buffers[i]
            rows.append(bytes)
            buffered += bytes.count
            if rows.count >= MetricFiles.fileFlushBytes {
                try flush(i)
            } else if buffered >= MetricFiles.totalFlushBytes {
                for j in buffers.indices where buffers[j].count > 0 { try flush(j) }
            }
        }

        /// Writes file `i`'s buffered bytes to its temp file (opened per flush, so thousands of
        /// keys never hold thousands of descriptors).
        mutating func flush(_ i: Int) throws(SystemError) {
            try write(i, UnsafeRawBufferPointer(buffers[i].bytes))
            buffered -= buffers[i].count
            buffers[i].removeAll()
        }

        private mutating func write(_ i: Int, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
            let flags = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (started[i] ? 0 : O_TRUNC)
            let fd = openat(dirfd, temp(i), flags, 0o666)
            if fd < 0 { throw SystemError("open", path: MetricFiles.directory + "/" + temp(i)) }
            defer { close(fd) }
            started[i] = true
            try Posix.writeAll(fd, bytes)
            // Written back now, not at the final fsync: that fsync would push megabytes at once,
            // and every fsync of the writer's (one journal commit) would wait behind them.
            _ = syncFileRange(fd, 0, 0, 2 | 4)  // SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
        }

        /// Every file complete: fsync each, rename it over its name, fsync the directory.
        mutating func finish() throws(SystemError) {
            for i in names.indices {
                if !started[i] {
                    // Small enough to have stayed in memory: written whole, like every snapshot.
                    try Posix.replaceFile(dirfd, names[i], UnsafeRawBufferPointer(buffers[i].bytes), sync: false)
                    buffers[i].removeAll()
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
        /// Field boundaries of the current row: the start of each field (and one past its end).
        let fields = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        struct Slot {
            var hash: UInt64 = 0
            var count = -1
            var index = -1
            var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        }
        static let cacheSlots = 1024
        static let inlineBytes = 48
        let cache = UnsafeMutablePointer<Slot>.allocate(capacity: Splitter.cacheSlots)

        init(run: RunFiles) {
            self.run = run
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: MetricFiles.readBytes, alignment: 64)
            cache.initialize(repeating: Slot(), count: Splitter.cacheSlots)
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

        /// Handles every complete row of `bytes`; returns the bytes they took. Pointer loads,
        /// and bytes above `,` (digits, letters, `-`, `.`, `:`) skipped at once: the split costs
        /// about what copying the rows costs.
        private mutating func rows(_ bytes: UnsafeRawBufferPointer, skipHeader: inout Bool, into out: inout Output) throws(SystemError) -> Int {
            guard let raw = bytes.baseAddress else { return 0 }
            let base = raw.assumingMemoryBound(to: UInt8.self)
            let f = fields
            var start = 0
            var i = 0
            var quoted = false
            var count = 0
            f[0] = 0
            let n = bytes.count
            while i < n {
                if !quoted {
                    // Eight bytes at a time to the next byte below `-` (`,`, `"`, LF or a
                    // control byte): the lowest flagged byte of a word is exact.
                    while i &+ 8 <= n {
                        let w = UInt64(littleEndian: (raw + i).loadUnaligned(as: UInt64.self))
                        let m = (w &- 0x2D2D_2D2D_2D2D_2D2D) & ~w & 0x8080_8080_8080_8080
                        if m != 0 {
                            i &+= m.trailingZeroBitCount >> 3
                            break
                        }
                        i &+= 8
                    }
                    if i >= n { break }
                }
                let b = base[i]
                if b > 0x2C {
                    i += 1
                    continue
                }
                if quoted {
                    if b == 0x22 { quoted = false }  // a doubled quote re-enters on the next byte
                } else if b == 0x22 {
                    quoted = true
                } else if b == 0x2C {
                    if count < 14 {
                        count += 1
                        f[count] = i + 1
                    }
                } else if b == 0x0A {
                    if count < 14 {
                        count += 1
                        f[count] = i + 1
                    }
                    if skipHeader {
                        skipHeader = false
                    } else if count == 7 {
                        try row(raw, into: &out)
                    }
                    start = i + 1
                    count = 0
                    f[0] = start
                }
                i += 1
            }
            return start
        }

        /// One row of 7 fields (boundaries in `fields`): time, step, context, key, value, rank, source.
        @inline(__always)
        private mutating func row(_ base: UnsafeRawPointer, into out: inout Output) throws(SystemError) {
            let f = fields
            @inline(__always) func field(_ k: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(start: base + f[k], count: f[k + 1] - 1 - f[k])
            }
            let pair = UnsafeRawBufferPointer(start: base + f[2], count: f[4] - 1 - f[2])
            let index = summary(pair, context: field(2), key: field(3))
            guard index >= 0 else { return }
            rows += 1
            try out.append(index, field(1), field(4), field(0), field(5), field(6))
        }

        /// The summary index of a row's `context,key` bytes: a direct-mapped cache of recent
        /// pairs (bytes compared, never trusted to the hash alone), then the dictionary.
        @inline(__always)
        private mutating func summary(_ pair: UnsafeRawBufferPointer, context: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> Int {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for b in pair { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
            let slot = cache + Int(truncatingIfNeeded: h & UInt64(Splitter.cacheSlots - 1))
            if slot.pointee.hash == h, slot.pointee.count == pair.count, pair.count <= Splitter.inlineBytes,
                withUnsafeBytes(of: &slot.pointee.bytes, { memcmp($0.baseAddress!, pair.baseAddress!, pair.count) == 0 })
            {
                return slot.pointee.index
            }
            let index: Int
            if let list = known[h], let hit = list.first(where: { $0.0.elementsEqual(pair) }) {
                index = hit.1
            } else {
                let k = SummaryKey(context: Splitter.unquote(context), key: Splitter.unquote(key))
                index = run.summaryIndex[k] ?? -1
                known[h, default: []].append((Array(pair), index))
            }
            if pair.count <= Splitter.inlineBytes {
                slot.pointee.hash = h
                slot.pointee.count = pair.count
                slot.pointee.index = index
                withUnsafeMutableBytes(of: &slot.pointee.bytes) { $0.baseAddress!.copyMemory(from: pair.baseAddress!, byteCount: pair.count) }
            }
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

        func release() {
            buffer.deallocate()
            fields.deallocate()
            cache.deallocate()
        }
    }
}

/// glibc's sync_file_range(2), which Glibc's module map leaves out (it needs _GNU_SOURCE):
/// writes a file's dirty pages back (data only, no journal commit). Best effort where it is
/// called: an error shows again at the file's fsync.
@_extern(c, "sync_file_range")
func syncFileRange(_ fd: Int32, _ offset: Int64, _ count: Int64, _ flags: UInt32) -> Int32
