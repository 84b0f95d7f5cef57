#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem
import TensorBoardEvents

/// A run's TensorBoard event files, written by the writer thread as records arrive
/// (docs/ON_DISK_FORMAT.md, "TensorBoard event files"): every metric as a scalar event, every
/// main.log line as a text event, and at the run's end its config as hparams.
///
/// Files: `events.out.tfevents.<start s>.<host>.logd.<N>`, N = 000001, 000002, … The live
/// segment is the highest N; at `rotate_bytes` a new one starts (no rename: a TensorBoard reading
/// a file keeps its path). Each segment starts with a `file_version` event and holds whole records.
/// The checkpoint records `[N, bytes]`; a restart cuts the files back to it and, when it cut
/// anything, continues in segment N+1, so a TensorBoard that read past the cut sees that file
/// stop rather than change under it (it still shows the points it read past the cut, which the
/// resend writes again, until it is restarted; a TensorBoard started later reads each once).
///
/// Writer-confined.
final class EventFile {
    let dirfd: Int32
    /// `events.out.tfevents.<start>.<host>.logd.`
    let prefix: String
    let rotateBytes: Int
    /// The run's start, for each segment's `file_version` event.
    let startWallTime: Double
    /// The live segment's number (1-based).
    private(set) var segment = 1
    /// Bytes in the live segment, including what is buffered.
    private(set) var size = 0
    let buffer = EventBuffer(capacity: 64 << 10)  // grows to about 256 KiB, where it drains
    private(set) var fd: Int32 = -1
    private(set) var dirty = false
    /// A failed write could not be cut back: the file may hold a partial record past `size`.
    private(set) var broken = false

    /// One per scalar tag: its encoded head (ScalarTag), in raw memory so the per-record path does
    /// no reference counting.
    private var slots = UnsafeMutablePointer<ScalarTag>.allocate(capacity: 16)
    private var slotCount = 0
    private var slotCapacity = 16
    private var slotByTag: [String: Int32] = [:]

    static let checkpointKey = "tfevents"

    deinit {
        for i in 0..<slotCount { slots[i].deallocate() }
        slots.deinitialize(count: slotCount)
        slots.deallocate()
    }

    init(dirfd: Int32, identity: RunStart, rotateBytes: Int) {
        self.dirfd = dirfd
        let start = identity.startTime > 0 ? identity.startTime : 0
        prefix = TensorBoardFileName.prefix(startSeconds: start / 1_000_000_000, host: identity.host)
        startWallTime = Double(start) / 1e9
        self.rotateBytes = rotateBytes
    }

    /// A run's first event file by its name. A new run's holds only its `file_version` record
    /// (40 bytes, no longer than the CSV header), so a run killed before its first checkpoint is
    /// recognised as unused (Writer.removeIfUnused) with it.
    static func isFirstSegment(_ name: String) -> Bool {
        name.hasPrefix("events.out.tfevents.") && name.hasSuffix(".logd.000001")
    }

    func segmentName(_ n: Int) -> String {
        let digits = String(n)
        return prefix + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The slot of a metric key's tag (one per tag: keys of several producers with one rank share it).
    func slot(context: String, key: String, source: String, rank: Int32) -> Int32 {
        let tag = TensorBoardTags.scalar(context: context, key: key, source: source, rank: Int64(rank))
        if let s = slotByTag[tag] { return s }
        if slotCount == slotCapacity {
            let bigger = UnsafeMutablePointer<ScalarTag>.allocate(capacity: slotCapacity * 2)
            bigger.moveInitialize(from: slots, count: slotCount)
            slots.deallocate()
            slots = bigger
            slotCapacity *= 2
        }
        (slots + slotCount).initialize(to: ScalarTag(tag: tag))
        slotCount += 1
        slotByTag[tag] = Int32(slotCount - 1)
        return Int32(slotCount - 1)
    }

    // MARK: records

    /// One metric (the writer's per-record path). `row`: the sample's 0-based row in metrics.csv,
    /// its step in TensorBoard when it has none.
    /// The tag and the buffer are looked up once for a stretch of one key's metrics (`tag(_:)`).
    @inline(__always)
    func scalar(_ m: Metric, tag: UnsafeMutablePointer<ScalarTag>, buffer: EventBuffer, row: UInt64) {
        let step = m.step != WireProtocol.noStep ? m.step : Int64(truncatingIfNeeded: row)
        let wall = Double(m.timestamp) / 1e9
        buffer.reserve(tag.pointee.maxRecordBytes)
        let bytes = tag.pointee.encode(at: buffer.base + buffer.count, wallTime: wall, step: step, value: m.value)
        buffer.advance(bytes)
        appended(bytes)
    }

    /// The slot's tag, valid until the next `slot(context:key:source:rank:)`.
    func tag(_ slot: Int32) -> UnsafeMutablePointer<ScalarTag> { slots + Int(slot) }

    /// One main.log line, as the text summary `logs/main.log`; `row`: its 0-based line number in
    /// main.log, its step.
    func log(_ line: LogLine, rank: Int32, row: UInt64) {
        let text = "\(line.level.name) [rank \(rank)] \(line.logger): \(line.message)"
        record(
            TensorBoardEvent.text(
                tag: TensorBoardTags.log, markdown: TensorBoardEvent.preformatted(text), wallTime: Double(line.timestamp) / 1e9,
                step: Int64(truncatingIfNeeded: row)))
    }

    /// The run ended: its config as hparams and its status, so TensorBoard's HParams tab lists it.
    func end(status: RunPhase, params: Value, endTime: Int64) {
        let wall = Double(endTime) / 1e9
        record(
            TensorBoardEvent.sessionStart(
                hparams: TensorBoardEvent.hparams(fromConfig: params), groupName: "", startTime: startWallTime, wallTime: wall))
        record(TensorBoardEvent.sessionEnd(status: status == .finished ? .success : .failure, endTime: wall, wallTime: wall))
    }

    private func record(_ payload: [UInt8]) {
        let before = buffer.count
        buffer.appendRecord(payload)
        appended(buffer.count - before)
    }

    /// A failed rotation or early drain: the records stay buffered, and the next `sync` (the
    /// durability point) retries and reports it, so nothing is acknowledged past it.
    private var pendingError: SystemError?

    @inline(__always)
    private func appended(_ bytes: Int) {
        size += bytes
        if size >= rotateBytes || buffer.count >= 256 << 10 { flushEarly() }
    }

    private func flushEarly() {
        do {
            if size >= rotateBytes, fd >= 0 {
                try rotate()
            } else {
                try drain()
            }
        } catch {
            pendingError = error
        }
    }

    // MARK: files

    /// Opens segment `n` fresh and writes its first record, the `file_version` event; records
    /// still buffered follow it.
    private func startSegment(_ n: Int) throws(SystemError) {
        let newfd = openat(dirfd, segmentName(n), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o666)
        if newfd < 0 { throw SystemError("open", path: segmentName(n)) }
        let header = EventBuffer(capacity: 128)
        header.appendRecord(TensorBoardEvent.fileVersionEvent(wallTime: startWallTime))
        do {
            try Posix.writeAll(newfd, UnsafeRawBufferPointer(start: header.base, count: header.count))
        } catch {
            close(newfd)
            throw error
        }
        fd = newfd
        segment = n
        size = header.count + buffer.count
        dirty = true
    }

    /// A new run: segment 1.
    func openNew() throws(SystemError) { try startSegment(1) }

    /// After a restart: cuts the files back to the checkpoint's `[segment, bytes]` (segments past
    /// it removed, the live one truncated); continues in the next segment if anything was cut.
    /// With no entry in the checkpoint (a run begun with event files off, or by an older logd),
    /// a new segment after any that exist.
    func recover(_ checkpoint: (segment: Int, offset: Int)?) throws(SystemError) {
        guard let cp = checkpoint else {
            try startSegment(highestSegment() + 1)
            return
        }
        let cut = try EventFile.cutBack(dirfd: dirfd, prefix: prefix, segmentName: segmentName, cp)
        if cut || cp.offset == 0 {
            try startSegment(cp.segment + (cp.offset == 0 ? 0 : 1))
            return
        }
        fd = openat(dirfd, segmentName(cp.segment), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: segmentName(cp.segment)) }
        segment = cp.segment
        size = cp.offset
    }

    /// Removes segments after `cp.segment` and truncates it to `cp.offset`; true when anything was
    /// removed or cut. A checkpoint that claims more than the file holds is refused.
    static func cutBack(
        dirfd: Int32, prefix: String, segmentName: (Int) -> String, _ cp: (segment: Int, offset: Int)
    ) throws(SystemError) -> Bool {
        var cut = false
        var st = stat()
        var n = cp.segment + 1
        while fstatat(dirfd, segmentName(n), &st, AT_SYMLINK_NOFOLLOW) == 0 {
            unlinkat(dirfd, segmentName(n), 0)
            cut = true
            n += 1
        }
        let name = segmentName(cp.segment)
        guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG else {
            if cp.offset == 0 { return cut }
            throw SystemError("checkpointed event file missing:", errno: ENOENT, path: name)
        }
        guard Int(st.st_size) >= cp.offset else {
            throw SystemError("checkpoint offset beyond the end of", errno: EINVAL, path: name)
        }
        if Int(st.st_size) > cp.offset {
            let fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { throw SystemError("open", path: name) }
            defer { close(fd) }
            if ftruncate(fd, off_t(cp.offset)) != 0 { throw SystemError("ftruncate", path: name) }
            if fsync(fd) != 0 { throw SystemError("fsync", path: name) }
            cut = true
        }
        return cut
    }

    /// The highest segment number of this run's event files in the directory (0: none).
    private func highestSegment() -> Int {
        var highest = 0
        for name in Writer.entries(dirfd) where name.hasPrefix(prefix) {
            if let n = Int(name.dropFirst(prefix.count)), n > highest { highest = n }
        }
        return highest
    }

    /// Hands the buffered records to the kernel; all or nothing, like `RotatingFile.drain`.
    func drain() throws(SystemError) {
        guard buffer.count > 0, !closed else { return }
        if fd < 0 { try startSegment(segment + 1) }  // a rotation could not open the next segment: retry
        let base = size - buffer.count
        do throws(SystemError) {
            if let fault = FaultPoints.writeError("tfevents") { throw fault }
            try Posix.writeAll(fd, UnsafeRawBufferPointer(start: buffer.base, count: buffer.count))
        } catch {
            if ftruncate(fd, off_t(base)) != 0 { broken = true }
            throw error
        }
        buffer.removeAll()
        dirty = true
    }

    func sync() throws(SystemError) {
        if broken { throw SystemError("write", errno: EIO, path: segmentName(segment)) }
        guard !closed else { return }
        pendingError = nil
        try drain()
        if dirty {
            try Posix.fsyncOrThrow(fd)
            dirty = false
        }
    }

    private func rotate() throws(SystemError) {
        try drain()
        try Posix.fsyncOrThrow(fd)
        close(fd)
        fd = -1
        // The new segment's directory entry is made durable by the next checkpoint's directory
        // fsync (same directory); until then the checkpoint names the old segment.
        try startSegment(segment + 1)
    }

    /// Closed with the run's other files (a run that ended): nothing is written until `reopen`.
    private var closed = false

    func closeFile() {
        if fd >= 0 {
            try? sync()
            close(fd)
            fd = -1
        }
        closed = true
    }

    /// Reopens the live segment where it was (a finished run a late producer reopens).
    func reopen() throws(SystemError) {
        guard closed else { return }
        closed = false
        try recover((segment, size))
    }

    var checkpointEntry: Value { [.int(Int64(segment)), .int(Int64(size))] }

    // MARK: a run's part

    /// The run's event files, or nil when `tensorboard` is off.
    static func make(dirfd: Int32, identity: RunStart, config: LogdConfig) -> EventFile? {
        config.tensorboard ? EventFile(dirfd: dirfd, identity: identity, rotateBytes: config.rotateBytes) : nil
    }

    /// After a restart, from the checkpoint's entry. With event files off now, a checkpointed
    /// entry is still honoured for the files' integrity (cut back), then nothing more is written.
    static func recover(_ events: EventFile?, dirfd: Int32, identity: RunStart, state: Value) throws(SystemError) {
        var cp: (Int, Int)?
        if case .list(let l)? = state[checkpointKey], l.count == 2, case .int(let a) = l[0], case .int(let b) = l[1],
            (1...1_000_000_000).contains(a), (0...(1 << 50)).contains(b)
        {
            cp = (Int(a), Int(b))
        }
        if let events {
            do {
                try events.recover(cp)
            } catch {
                // The event files are derived data: a missing or short one (deleted by hand) does
                // not stop the run from resuming; TensorBoard gets a new segment from here on.
                try events.recover(nil)
            }
        } else if let cp {
            let probe = EventFile(dirfd: dirfd, identity: identity, rotateBytes: 1)
            _ = try cutBack(dirfd: dirfd, prefix: probe.prefix, segmentName: probe.segmentName, cp)
        }
    }
}

// MARK: the writer's hooks (one call per record in Writer.swift)

extension Writer {
    /// A metric key was defined: its TensorBoard tag's slot in its run's event file.
    func defineEventSlot(_ keyIndex: Int32, run: RunFiles?, key: MetricKey, rank: Int32) {
        let k = Int(keyIndex)
        guard k >= 0 else { return }
        if k >= eventSlots.count { eventSlots += repeatElement(-1, count: k + 1 - eventSlots.count) }
        eventSlots[k] = run?.events?.slot(context: key.context, key: key.key, source: key.source, rank: rank) ?? -1
    }

    /// After a main.log line: its text event.
    func eventLog(_ line: LogLine, rank: Int32, run: RunFiles) {
        run.events?.log(line, rank: rank, row: run.logCount &- 1)
    }

    /// The run ends (not crashed): hparams and status.
    func eventRunEnded(_ run: RunFiles, status: RunPhase) {
        guard status != .crashed else { return }
        run.events?.end(status: status, params: run.params, endTime: run.endTime ?? Posix.realtimeNanos())
    }
}
