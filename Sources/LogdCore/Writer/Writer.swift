#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// The writer thread: owns every file under the data root. Items arrive from the loop through
/// a bounded queue (`enqueue`); events go back through `post` (the loop's async door).
///
/// Threading: `enqueue`, `queuedBytes` and `stats` are thread-safe; everything else is
/// writer-confined (runs on the writer thread, or in `init` before the thread starts).
final class Writer: @unchecked Sendable {
    struct Stats: Sendable {
        var batchesWritten = 0
        var fsyncs = 0
        var writeErrors = 0
        var diskFreeBytes: Int64 = 0
        var recordsWritten: UInt64 = 0
        /// A write failed for want of space or I/O: the writer retries and takes nothing new
        /// (the queue fills and the loop stops reading) until a durability point succeeds.
        var blocked = false
        var lastWriteError = ""
        /// Records the writer refused by a limit (PARAMS past max_params_bytes_*).
        var refusedRecords: UInt64 = 0
        /// Runs whose state under the data root could not be read at start-up, set aside.
        var quarantined = 0
    }

    let config: LogdConfig
    let log: DaemonLog
    let rootfd: Int32
    private let post: @Sendable ([LoopEvent]) -> Void

    // Shared with the loop, under `lock`.
    private let lock = ConditionLock()
    /// The loop's batches in order, each with its weight; the writer takes them in slices of at
    /// most `sliceBytes`, so a barrier completes once the items before it are durable, not after
    /// everything queued behind it too.
    private var queue: [(items: [WriterItem], bytes: Int)] = []
    /// Weight of the queued items and of the slice being written (freed once it is written).
    private var queueBytes = 0
    private var sharedStats = Stats()
    /// Copies the copier finished, waiting for the writer.
    private var completions: [CopyResult] = []
    /// Runs the finisher finished, waiting for the writer.
    private var finishedJobs: [RunFinisher.Done] = []

    // Writer-confined.
    private var runs: [Int32: RunFiles] = [:]
    /// Metric keys by the loop's key index (dense: the loop reuses the indices of ended runs).
    private var keys = WriterKeyTable()
    private var lineFormatter = MetricLineFormatter()
    private var stats = Stats()
    /// TensorBoard tag slot per key index (EventFile.swift); -1: none.
    var eventSlots: [Int32] = []
    private var time = ISOTimeFormatter()
    private var lastDurable: Int64 = 0
    /// Barriers waiting for the next durability point, each with the copies it waits for
    /// (every copy submitted before it: `flush` returning means copies are on disk).
    private var pendingBarriers: [(id: UInt64, copies: UInt64)] = []
    private var copier: ArtifactCopier!
    private var finisher: RunFinisher!
    /// Runs' fsyncs at a durability point, at once (nil until `start`: recovery is sequential).
    private var workers: WorkerPool?
    /// Ended runs the finisher is finishing, by run id: a producer that joins one waits for it.
    private var finishing: [String: RunFiles] = [:]
    private var copiesSubmitted: UInt64 = 0
    private var copiesFinished: UInt64 = 0
    /// Passed descriptors the writer is done with since the last report to the loop.
    private var descriptorsReleased = 0
    private var thread: NativeThread?
    /// Weight of each entry of the slice being written (writer-confined; `requeue`).
    private var sliceEntryBytes: [Int] = []
    private var requeuedBytes = 0
    private var scratch: [UInt8] = []
    private let user: String
    /// Threads beside the writer's own that fsync runs at a durability point.
    static let workerThreads = 3
    /// Writer-confined copy of `stats.blocked`'s cause: when the next retry is due.
    private static let retryIntervalNanos: Int64 = 200_000_000

    /// Opens the data root and recovers unfinished runs (before the loop starts).
    init(config: LogdConfig, log: DaemonLog, post: @escaping @Sendable ([LoopEvent]) -> Void) throws(SystemError) {
        self.config = config
        self.log = log
        self.post = post
        // Run directories and files get run_directory_mode (0750 / 0640 by default): creation
        // asks for 0777 / 0666 and the process umask takes away the rest.
        umask(mode_t(0o777 & ~config.runDirectoryMode))
        try Posix.makeDirectories(config.dataRoot)
        rootfd = open(config.dataRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootfd < 0 { throw SystemError("open", path: config.dataRoot) }
        user = Writer.userName(getuid())
        scratch.reserveCapacity(1 << 16)
        copier = ArtifactCopier { [unowned self] result in self.copyFinished(result) }
        finisher = RunFinisher(rootfd: rootfd, user: user) { [unowned self] done in
            self.lock.withLock {
                self.finishedJobs.append(done)
                self.lock.signal()
            }
        }
    }

    /// The copier's door: a finished copy (thread-safe).
    private func copyFinished(_ result: CopyResult) {
        lock.withLock {
            completions.append(result)
            lock.signal()
        }
    }

    static func userName(_ uid: uid_t) -> String {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &pw, &buf, buf.count, &result) == 0, result != nil, let name = pw.pw_name {
            return String(cString: name)
        }
        return String(uid)
    }

    // MARK: recovery (before the thread starts)

    /// Reopens every run listed in `<root>/.logd/active/`, cut back to its checkpoint.
    func recover() -> [RecoveredRun] {
        guard let statefd = try? Posix.makeDirectory(rootfd, ".logd", mode: 0o700) else { return [] }
        defer { close(statefd) }
        guard let activefd = try? Posix.makeDirectory(statefd, "active", mode: 0o700) else { return [] }
        defer { close(activefd) }
        var recovered: [RecoveredRun] = []
        loadFinished(statefd)
        for name in Writer.entries(activefd) {
            let content = try? Posix.readFile(activefd, name, limit: 64 << 10)
            let lines = content.map { String(decoding: $0, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) } ?? []
            let directory = lines.first.map { String($0).trimmingNewlines() } ?? ""
            // A marker names `<experiment>/<run>` under the data root, nothing else.
            let parts = directory.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
                quarantine(marker: name, activefd: activefd, statefd: statefd, runfd: nil, why: "the active marker does not name a run directory")
                continue
            }
            let index = Int32(recovered.count)
            do {
                guard let run = try RunFiles.recover(index: index, rootfd: rootfd, directory: directory, config: config) else {
                    let runfd = try? Posix.openPath(rootfd, directory)
                    if removeIfUnused(runfd, directory) {
                        // Killed between the marker (or mkdir) and the first checkpoint: nothing of
                        // it was acknowledged; its producers resend everything.
                        unlinkat(activefd, name, 0)
                        if let runfd { close(runfd) }
                        continue
                    }
                    quarantine(marker: name, activefd: activefd, statefd: statefd, runfd: runfd, why: "run \(directory): no readable checkpoint")
                    if let runfd { close(runfd) }
                    continue
                }
                run.marked = true
                // Its creation may never have been fsynced (killed before its first durability
                // point): the first one after the restart does it, before acknowledging anything.
                run.unsyncedCreation = (rootfd, name)
                runs[index] = run
                countParams(run)
                run.removeSnapshotTemps()
                if let status = run.endedStatus {
                    // Every producer had ended before the crash (killed between the run's end and
                    // its marker's move): finish it now instead of waiting for producers that are gone.
                    var ignored: [LoopEvent] = []
                    endRun(run, status: status, &ignored)
                    continue
                }
                var r = RecoveredRun(
                    index: index, runID: run.runID, directory: directory,
                    sessions: run.producers.map { ($0.info.session, $0.durableSeq) })
                for p in run.producers {
                    r.received[p.info.session] = p.receivedSeq
                    r.ranks[p.info.session] = p.info.start.rank
                }
                r.holes = run.holes()
                r.owner = run.producers.first?.info.uid ?? 0
                recovered.append(r)
                log.log(.info, "resumable run \(directory) (\(run.producers.count) producers)")
            } catch {
                let runfd = try? Posix.openPath(rootfd, directory)
                quarantine(marker: name, activefd: activefd, statefd: statefd, runfd: runfd, why: "run \(directory): cannot reopen: \(error)")
                if let runfd { close(runfd) }
            }
        }
        stats.quarantined = quarantinedCount
        sharedStats = stats
        return recovered
    }

    private var quarantinedCount = 0

    /// Names in a directory, sorted, without dot files.
    static func entries(_ dirfd: Int32) -> [String] {
        guard let dir = fdopendir(dup(dirfd)) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    /// Finished runs' markers: run id → directory, so late producers reopen them.
    private func loadFinished(_ statefd: Int32) {
        guard let fd = try? Posix.makeDirectory(statefd, "finished", mode: 0o700) else { return }
        defer { close(fd) }
        for name in Writer.entries(fd) {
            guard let content = try? Posix.readFile(fd, name, limit: 64 << 10) else { continue }
            let lines = String(decoding: content, as: UTF8.self).split(separator: "\n")
            guard lines.count >= 2 else { continue }
            remember(finished: String(lines[1]), directory: String(lines[0]))
            for line in lines.dropFirst(2) {
                let f = line.split(separator: " ")
                guard f.count == 2, let session = SessionID(hex: String(f[0])), let seq = UInt64(f[1]), seq <= Server.maxSeq else { continue }
                finishedSessions.append((session, seq))
            }
        }
    }

    /// A directory with no readable checkpoint that holds nothing but the empty files a new run
    /// starts with is removed (true); anything else is left for quarantine (false).
    private func removeIfUnused(_ runfd: Int32?, _ directory: String) -> Bool {
        guard let runfd else { return true }  // never created
        let names = Writer.entries(runfd)
        let starters: Set<String> = ["main.log", "metrics.csv"]
        guard names.allSatisfy({ starters.contains($0) || EventFile.isFirstSegment($0) }) else { return false }
        for name in names {
            var st = stat()
            guard fstatat(runfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_size <= RunFiles.metricsHeader.count else { return false }
        }
        for name in names { unlinkat(runfd, name, 0) }
        // And an unreadable first checkpoint (a power failure before the run's first durability
        // point can leave it empty): otherwise the rmdir fails and an orphan stays behind.
        unlinkat(runfd, RunFiles.checkpointName, 0)
        unlinkat(runfd, "." + RunFiles.checkpointName + ".tmp", 0)
        let parts = directory.split(separator: "/")
        if let expfd = try? Posix.openDirectory(rootfd, String(parts[0])) {
            unlinkat(expfd, String(parts[1]), AT_REMOVEDIR)
            close(expfd)
        }
        log.log(.info, "run \(directory): created but never checkpointed before a crash; removed (nothing of it was acknowledged)")
        return true
    }

    /// Sets a run's unreadable state aside, so start-up never fails on it and every other run
    /// recovers: the marker moves to `.logd/quarantine/`, the checkpoint (if any) is renamed
    /// `.logd-checkpoint.quarantined`. Logged, counted in status (`quarantined`); the files stay
    /// for a person to look at.
    private func quarantine(marker: String, activefd: Int32, statefd: Int32, runfd: Int32?, why: String) {
        quarantinedCount += 1
        log.log(.warning, "\(why); set aside (quarantined), the other runs continue")
        if let qfd = try? Posix.makeDirectory(statefd, "quarantine", mode: 0o700) {
            if renameat(activefd, marker, qfd, marker) != 0 { unlinkat(activefd, marker, 0) }
            close(qfd)
        } else {
            unlinkat(activefd, marker, 0)
        }
        if let runfd {
            _ = renameat(runfd, RunFiles.checkpointName, runfd, RunFiles.checkpointName + ".quarantined")
        }
    }

    // MARK: the door from the loop

    /// Adds one batch from the loop; returns the bytes now queued.
    @discardableResult
    func enqueue(_ items: [WriterItem], bytes: Int) -> Int {
        lock.withLock {
            queue.append((items, bytes))
            queueBytes += bytes
            lock.signal()
            return queueBytes
        }
    }

    /// Takes the next slice off the queue (lock held): whole loop batches, at least one, up to
    /// `sliceBytes`. Returns its weight.
    private func takeSlice(_ batch: inout [[WriterItem]]) -> Int {
        let sliceBytes = max(64 << 10, config.writerQueueBytes / 8)
        var n = 0
        var bytes = 0
        sliceEntryBytes.removeAll(keepingCapacity: true)
        while n < queue.count, n == 0 || bytes + queue[n].bytes <= sliceBytes {
            bytes += queue[n].bytes
            sliceEntryBytes.append(queue[n].bytes)
            n += 1
        }
        batch = queue[..<n].map(\.items)
        queue.removeFirst(n)
        return bytes
    }

    /// Puts the slice's entries from `first` on (the first of them possibly cut) back at the
    /// queue's front, in order, still counted in `queueBytes`.
    private func requeue(_ rest: [[WriterItem]], from first: Int) {
        let bytes = Array(sliceEntryBytes[first...])
        requeuedBytes = bytes.reduce(0, +)
        lock.withLock { queue = zip(rest, bytes).map { ($0, $1) } + queue }
    }

    var queuedBytes: Int { lock.withLock { queueBytes } }
    var currentStats: Stats { lock.withLock { sharedStats } }

    func start() {
        copier.start()
        finisher.start()
        workers = WorkerPool(threads: Writer.workerThreads)
        thread = NativeThread(name: "logd-writer") { [self] in run() }
    }

    func join() { thread?.join() }

    // MARK: the writer thread

    private func run() {
        lastDurable = Posix.monotonicNanos()
        updateDiskFree()
        var stopping = false
        while !stopping {
            let interval = Int64(config.ackIntervalMs) * 1_000_000
            var batch: [[WriterItem]] = []
            var done: [CopyResult] = []
            var runsDone: [RunFinisher.Done] = []
            var taken = 0
            if stats.blocked {
                // The disk is full (or failing): take nothing new, so memory stays bounded and the
                // loop stops reading; retry the pending writes until they succeed. A shutdown
                // request still gets through.
                var refusedBarriers: [UInt64] = []
                let shutdown = lock.withLock { () -> Bool in
                    if !queue.contains(where: { $0.items.contains { if case .shutdown = $0 { true } else { false } } }) {
                        lock.wait(untilMonotonic: Posix.monotonicNanos() + Writer.retryIntervalNanos)
                    }
                    swap(&done, &completions)
                    runsDone += finishedJobs  // taken here, also when a shutdown falls through
                    finishedJobs.removeAll()
                    // Flushes queued behind the failure fail now rather than wait for space: a
                    // failed barrier claims nothing, so answering it early is safe.
                    for i in queue.indices where queue[i].items.contains(where: { if case .barrier = $0 { true } else { false } }) {
                        queue[i].items.removeAll { item in
                            guard case .barrier(let id) = item else { return false }
                            refusedBarriers.append(id)
                            return true
                        }
                    }
                    return queue.contains(where: { $0.items.contains { if case .shutdown = $0 { true } else { false } } })
                }
                if !shutdown {
                    var events: [LoopEvent] = refusedBarriers.map { .barrierDone($0, error: "writes are failing: \(stats.lastWriteError)") }
                    for result in done { copyDone(result, &events) }
                    for job in runsDone { runFinished(job, &events) }
                    runsDone.removeAll()
                    stats.blocked = false  // set again by any failure below
                    drainFiles()
                    events += durabilityPoint(now: Posix.monotonicNanos(), final: false)
                    if !stats.blocked { log.log(.info, "writes succeed again: resuming") }
                    lock.withLock { sharedStats = stats }
                    if descriptorsReleased > 0 {
                        events.append(.copiesFinished(descriptorsReleased))
                        descriptorsReleased = 0
                    }
                    if !events.isEmpty { post(events) }
                    continue
                }
            }
            lock.withLock {
                if queue.isEmpty && completions.isEmpty && finishedJobs.isEmpty {
                    lock.wait(untilMonotonic: Posix.monotonicNanos() + interval)
                }
                taken = takeSlice(&batch)
                done += completions  // (a shutdown that fell through the blocked branch has some)
                completions.removeAll()
                runsDone += finishedJobs
                finishedJobs.removeAll()
            }
            var events: [LoopEvent] = []
            for job in runsDone { runFinished(job, &events) }
            var requeued = false
            batchLoop: for (b, items) in batch.enumerated() {
                for i in items.indices {
                    // Metrics, the bulk, matched in place: a run of plain data, so no copy of
                    // the enum per metric (callgrind: value-witness copies ~150 instructions each).
                    if case .metrics(let ms) = items[i] {
                        writeMetrics(ms)
                        continue
                    }
                    let item = items[i]
                    if case .shutdown = item { stopping = true; continue }
                    apply(item, &events)
                    if joinDeferred, !stopping {
                        // A run could not be created (disk full): this join and everything after
                        // it go back to the front of the queue, in order, for after the retry.
                        joinDeferred = false
                        requeued = true
                        let rest = [Array(items[i...])] + Array(batch[(b + 1)...])
                        requeue(rest, from: b)
                        break batchLoop
                    }
                }
            }
            if stopping {
                // Running copies are abandoned: their entries stay pending in the checkpoint,
                // and their frames are taken again when producers resend them after a restart.
                copier.stop()
                done += lock.withLock { () -> [CopyResult] in
                    defer { completions.removeAll() }
                    return completions
                }
                // Runs being finished are finished before the last durability point.
                waitForFinisher(&events) { $0.isEmpty }
                finisher.stop()
            }
            for result in done { copyDone(result, &events) }
            drainFiles()
            let now = Posix.monotonicNanos()
            let barrierReady = pendingBarriers.contains { $0.copies <= copiesFinished }
            if barrierReady || stopping || now - lastDurable >= interval {
                events += durabilityPoint(now: now, final: stopping)
            }
            lock.withLock {
                // Requeued items stay counted until they are taken again.
                queueBytes -= requeued ? taken - requeuedBytes : taken
                sharedStats = stats
            }
            if !batch.isEmpty { events.append(.queueDrained) }
            if descriptorsReleased > 0 {
                events.append(.copiesFinished(descriptorsReleased))
                descriptorsReleased = 0
            }
            if !events.isEmpty { post(events) }
        }
        for run in runs.values where run.isOpen { run.closeFiles() }
        workers?.stop()
        post([.stopped])
    }

    /// The hot path: each metric's line is formatted straight into its run's metrics.csv
    /// buffer. A run's files are looked up once per stretch of its metrics and a key once per
    /// stretch of that key, not per metric (callgrind: every lookup is a retain and a release).
    private func writeMetrics(_ ms: [Metric]) {
        ms.withUnsafeBufferPointer { ms in
            var i = 0
            while i < ms.count {
                if let key = keys[Int(ms[i].keyID)], key.run.isOpen {
                    i = writeMetrics(ms, from: i, run: key.run)
                } else {
                    i += 1
                }
            }
        }
    }

    /// The metrics from `start` on while their keys are `run`'s (stops after a failed write,
    /// which may close the run); returns where it stopped.
    private func writeMetrics(_ ms: UnsafeBufferPointer<Metric>, from start: Int, run: RunFiles) -> Int {
        var w = MetricStretch(run: run)
        var i = start
        while i < ms.count, run.isOpen {
            guard let ref = keys.unretained(Int(ms[i].keyID)) else { break }
            // Borrowed, not retained: `keys` owns the key for as long as this runs.
            guard let next = ref._withUnsafeGuaranteedRef({ key in key.run === run ? writeMetrics(ms, from: i, key: key, &w) : nil })
            else { break }
            i = next
        }
        if w.rowsAdded > 0 { w.count() }
        stats.recordsWritten += UInt64(i - start)
        return i
    }

    /// What a stretch of one run's metrics holds on to: its files, and the per-key rows not yet
    /// counted in `keyRows` (`budget`: how many bytes may be appended before they must be).
    private struct MetricStretch {
        let run: RunFiles
        let file: RotatingFile
        let keyRows: MetricFiles.KeyRows?
        let events: EventFile?
        var budget: Int
        var rowsAdded = 0
        var bytesAdded = 0

        init(run: RunFiles) {
            self.run = run
            file = run.metrics
            keyRows = run.keyRows
            events = run.events
            budget = keyRows?.budget ?? 0
        }

        /// Tells `keyRows` of the rows appended (it may write its journal, or stop collecting).
        mutating func count() {
            guard let keyRows else { return }
            keyRows.added(rows: rowsAdded, bytes: bytesAdded)
            rowsAdded = 0
            bytesAdded = 0
            budget = keyRows.budget
        }
    }

    /// The metrics from `start` on while they are of `key`.
    @inline(__always)
    private func writeMetrics(_ ms: UnsafeBufferPointer<Metric>, from start: Int, key: WriterKey, _ w: inout MetricStretch) -> Int {
        let keyID = ms[start].keyID
        let s = key.summary
        let run = w.run
        let file = w.file
        let events = w.events
        let k = Int(keyID)
        let eventSlot = events != nil && k < eventSlots.count ? eventSlots[k] : -1
        let eventTag = eventSlot >= 0 ? events?.tag(eventSlot) : nil
        let eventBuffer = events?.buffer
        var rows = s >= 0 ? w.keyRows?.slot(s) : nil
        var i = start
        while i < ms.count, ms[i].keyID == keyID {
            let m = ms[i]
            i += 1
            let line = file.lineStart(reserving: key.maxLine)
            let fields = lineFormatter.line(m, key: key, at: line)
            if s >= 0 { run.summaries[s].add(m.value, step: m.step) }
            if let r = rows {
                w.bytesAdded += r.pointee.appendRow(fields, line: line)
                w.rowsAdded += 1
                if w.bytesAdded >= w.budget {  // the journal takes them (or collecting stops)
                    w.count()
                    rows = w.keyRows?.slot(s)
                }
            }
            run.metricCount += 1
            if let eventTag, let events, let eventBuffer { events.scalar(m, tag: eventTag, buffer: eventBuffer, row: run.metricCount &- 1) }
            do throws(SystemError) {
                try file.lineAppended(fields.lineBytes, written: true)
            } catch {
                writeFailed(run, error)
                break
            }
        }
        return i
    }

    private func apply(_ item: WriterItem, _ events: inout [LoopEvent]) {
        switch item {
        case .metrics(let ms):
            writeMetrics(ms)
        case .log(let runIndex, let rank, let line):
            guard let run = runs[runIndex], run.isOpen else { return }
            appendLog(line, rank: rank, to: run)
            eventLog(line, rank: rank, run: run)
        case .join(let runIndex, let producer):
            join(runIndex, producer, &events)
        case .defineKey(let keyIndex, let runIndex, let key, let rank):
            let k = Int(keyIndex)
            guard k >= 0 else { return }
            keys.grow(to: k + 1)
            guard let run = runs[runIndex] else {
                keys[k] = nil
                return
            }
            keys[k] = WriterKey(
                run: run, runIndex: runIndex, middle: CSV.fieldBytes(key.context) + [0x2C] + CSV.fieldBytes(key.key) + [0x2C],
                tail: [0x2C] + Array(String(rank).utf8) + [0x2C] + CSV.fieldBytes(key.source) + [0x0A],
                summary: run.summarySlot(context: key.context, key: key.key, source: key.source))
            defineEventSlot(keyIndex, run: run, key: key, rank: rank)
        case .params(let runIndex, let value, let bytes):
            guard let run = runs[runIndex] else { return }
            let merged = run.params.mergedParams(value.uniqueKeys())
            guard admitParams(run, merged, adding: bytes) else { return }
            run.params = merged
            run.stale.formUnion([.config, .prov])
            run.needsDurability = true
        case .record(let runIndex, let session, let seq, let record, let fd):
            guard let run = runs[runIndex] else {
                if fd != nil { descriptorsReleased += 1 }  // dropping it closes it
                return
            }
            switch record {
            case .artifact, .modelVersion:
                if let job = run.receiveOutput(session: session, seq: seq, record, fd: fd, jobID: copiesSubmitted + 1) {
                    copiesSubmitted += 1
                    copier.submit(job)
                } else if fd != nil {
                    descriptorsReleased += 1
                }
            case .modelInfo(let info):
                run.setModelInfo(info)
            case .dataset(let d):
                run.addDataset(d)
            default:
                break
            }
        case .drops(let runIndex, let session, let total):
            guard let run = runs[runIndex], let p = run.producerIndex(session) else { return }
            run.producers[p].dropped = max(run.producers[p].dropped, total)
            run.snapshotStale = true
        case .mark(let runIndex, let session, let seq):
            guard let run = runs[runIndex], let p = run.producerIndex(session) else { return }
            run.producers[p].receivedSeq = max(run.producers[p].receivedSeq, seq)
            run.needsDurability = true
        case .producerEnded(let runIndex, let session, let end):
            guard let run = runs[runIndex], let p = run.producerIndex(session) else { return }
            run.producers[p].status = end.phase
            run.snapshotStale = true
            run.needsDurability = true
        case .runEnded(let runIndex, let status):
            guard let run = runs[runIndex] else { return }
            endRun(run, status: status, &events)
        case .reopen(let runIndex):
            guard let run = runs[runIndex] else { return }
            run.deferredEnd = nil
            do {
                try run.reopen()
                run.status = .running
                run.endTime = nil
                run.snapshotStale = true
            } catch {
                writeFailed(run, error)
            }
        case .barrier(let id):
            pendingBarriers.append((id, copiesSubmitted))
        case .shutdown:
            break
        }
    }

    private func join(_ runIndex: Int32, _ producer: ProducerInfo, _ events: inout [LoopEvent]) {
        let run: RunFiles
        if runs[runIndex] == nil, finishing[producer.start.runID] != nil {
            // A late producer of a run being finished (a forked child, a DDP rank that comes
            // after the others ended) reopens its directory once it is finished: wait for that.
            waitForFinisher(&events) { $0[producer.start.runID] == nil }
        }
        if let existing = runs[runIndex] {
            run = existing
        } else if let reopened = reopenFinished(runIndex, producer) {
            // A late producer of a run that already ended (a forked child, a DDP rank that comes
            // after the others finished): one run id is one directory.
            run = reopened
        } else {
            do {
                // The marker goes first, naming each candidate directory before its mkdir: a
                // crash at any point leaves a marker for every directory it made.
                var intended: String?
                run = try RunFiles.create(index: runIndex, rootfd: rootfd, producer: producer, config: config) {
                    directory throws(SystemError) in
                    if let previous = intended { removeMarker(previous) }
                    try writeMarker(directory: directory, runID: producer.start.runID, sync: false)
                    intended = directory
                }
                run.marked = true
                run.keyRows = MetricFiles.KeyRows(rundirfd: run.dirfd)
                runs[runIndex] = run
                // The checkpoint exists before any record is written; it, the marker and the
                // directories are fsynced at the run's first durability point, before anything
                // is acknowledged, and there with the other runs' fsyncs at once.
                try run.writeFirstCheckpoint(rootfd: rootfd, marker: RunMarker.name(directory: run.directory))
                log.log(.info, "run \(run.directory) started (run id \(run.runID))")
            } catch {
                stats.writeErrors += 1
                stats.lastWriteError = "cannot create run directory: \(error)"
                if [ENOSPC, EDQUOT, EIO, EROFS].contains(error.errno) {
                    // Retried once writes succeed again: the run's records wait in the queue.
                    stats.blocked = true
                    joinDeferred = true
                    if let partial = runs.removeValue(forKey: runIndex) { partial.closeFiles() }
                }
                log.limited(.error, key: "create-run", "cannot create run directory: \(error)")
                return
            }
        }
        if let p = run.producerIndex(producer.session) {
            run.producers[p].info = producer
            run.producers[p].status = .running
        } else {
            run.producers.append(RunFiles.Producer(info: producer))
        }
        if !run.isOpen {
            try? run.reopen()
            run.status = .running
            run.endTime = nil
        }
        run.snapshotStale = true
        run.needsDurability = true
        events.append(.runOpened(run: runIndex, directory: run.directory))
    }

    // MARK: run markers (RunFinisher.markFinished moves them to finished/)

    private func withStateDir(_ name: String, _ body: (Int32) throws(SystemError) -> Void) throws(SystemError) {
        let statefd = try Posix.makeDirectory(rootfd, ".logd", mode: 0o700)
        defer { close(statefd) }
        let fd = try Posix.makeDirectory(statefd, name, mode: 0o700)
        defer { close(fd) }
        try body(fd)
    }

    /// `sync: false`: a new run's, fsynced by its first durability point (RunFiles.syncCreation).
    private func writeMarker(directory: String, runID: String, sync: Bool = true) throws(SystemError) {
        FaultPoints.hit("before-marker")
        try withStateDir("active") { fd throws(SystemError) in
            try Posix.replaceFile(fd, RunMarker.name(directory: directory), Array((directory + "\n" + runID + "\n").utf8), sync: sync)
        }
        FaultPoints.hit("after-marker")
    }

    private func removeMarker(_ directory: String) {
        try? withStateDir("active") { fd throws(SystemError) in _ = unlinkat(fd, RunMarker.name(directory: directory), 0) }
    }

    /// Sessions of finished runs found at start-up (and completed during recovery), for the loop.
    private(set) var finishedSessions: [(SessionID, UInt64)] = []

    /// Set by `join` when a run could not be created for want of space: the run loop requeues.
    private var joinDeferred = false

    /// The open runs' `paramsBound` summed (max_params_bytes_total).
    private var paramsTotal = 0

    /// Finished runs' directories by run id (the most recent 100,000).
    private var finishedRuns = RecentMap<String, String>(capacity: 100_000)

    private func remember(finished runID: String, directory: String) { finishedRuns.set(directory, for: runID) }

    /// Reopens the directory of a finished run with this run id, if the producer's uid owns it.
    private func reopenFinished(_ runIndex: Int32, _ producer: ProducerInfo) -> RunFiles? {
        guard let directory = finishedRuns[producer.start.runID] else { return nil }
        do {
            guard let run = try RunFiles.recover(index: runIndex, rootfd: rootfd, directory: directory, config: config),
                run.runID == producer.start.runID
            else { return nil }
            if let owner = run.producers.first?.info.uid, owner != producer.uid, producer.uid != 0 {
                log.limited(.warning, key: "reopen-owner", "run id \(run.runID) belongs to uid \(owner): uid \(producer.uid) gets a new directory")
                return nil
            }
            try writeMarker(directory: directory, runID: run.runID)
            run.marked = true
            run.removeSnapshotTemps()
            runs[runIndex] = run
            countParams(run)
            log.log(.info, "run \(directory) reopened: a producer of run id \(run.runID) came after it ended")
            return run
        } catch {
            writeFailedNoRun(error, "cannot reopen finished run \(directory)")
            return nil
        }
    }

    private func writeFailedNoRun(_ error: SystemError, _ what: String) {
        stats.writeErrors += 1
        stats.lastWriteError = "\(what): \(error)"
        log.limited(.error, key: "no-run", "\(what): \(error)")
    }

    /// The copier finished (or failed) a copy.
    private func copyDone(_ result: CopyResult, _ events: inout [LoopEvent]) {
        copiesFinished += 1
        descriptorsReleased += 1
        guard let run = runs[result.run] else { return }
        run.finishCopy(result)
        if let error = result.error {
            log.limited(.warning, key: "copy-\(run.index)", "run \(run.directory): an artifact copy failed: \(error)")
        }
        if run.activeCopies == 0, let status = run.deferredEnd { endRun(run, status: status, &events) }
    }

    private func endRun(_ run: RunFiles, status: RunPhase, _ events: inout [LoopEvent]) {
        run.status = status
        run.endTime = Posix.realtimeNanos()
        run.snapshotStale = true
        if run.activeCopies > 0 {
            // Finished when the last copy is: the files stay open until then.
            run.deferredEnd = status
            return
        }
        run.deferredEnd = nil
        if status != .crashed { run.abandonPendingCopies() }
        if status == .crashed {
            // A crashed run may come back: its next end splits the whole metrics.csv.
            run.keyRows?.abandon()
            run.keyRows = nil
        }
        eventRunEnded(run, status: status)
        let durable: [(SessionID, UInt64)]
        do { durable = try run.makeDurable() } catch {
            writeFailed(run, error)  // still open: the next durability point tries again
            return
        }
        guard status != .crashed else {
            if !durable.isEmpty { events.append(.durable(durable)) }
            do { try run.writeSnapshots(user: user, now: Posix.monotonicNanos()) } catch { writeFailed(run, error) }
            run.closeFiles()
            log.log(.info, "run \(run.directory) \(status)")
            return
        }
        // What a flush promises is done here: the last records and the checkpoint are durable,
        // and run.yaml says how the run ended. The rest — metrics/ files, summary.yaml and
        // prov.json (each costs O(keys)), every snapshot fsynced, the marker — on the finisher
        // thread, with the run's last acknowledgements held until it is done (RunFinisher.swift).
        do {
            try run.writeSnapshots(user: user, now: Posix.monotonicNanos(), sync: false, deferring: [.summary, .prov, .models])
        } catch {
            writeFailed(run, error)  // the finisher writes every snapshot again
        }
        runs.removeValue(forKey: run.index)
        paramsTotal -= run.paramsBound
        keys.removeAll { $0.runIndex == run.index }
        run.keyRows?.detach()
        let job = RunFinisher.Job(run: run, durable: durable)
        events.append(.runFinishing(run.producers.map(\.info.session)))
        if finisher.isRunning {
            finishing[run.runID] = run
            finisher.submit(job)
        } else {
            runFinished(finisher.finish(job), &events)  // recovery, before the threads start
        }
    }

    /// The finisher finished a run (RunFinisher.finish): its held acknowledgements go out.
    private func runFinished(_ done: RunFinisher.Done, _ events: inout [LoopEvent]) {
        let run = done.job.run
        if finishing[run.runID] === run { finishing[run.runID] = nil }
        if !done.job.durable.isEmpty { events.append(.durable(done.job.durable)) }
        events.append(.runFinished(run.producers.map(\.info.session)))
        switch done.metricFiles {
        case .success(let (rows, collected)):
            log.log(.debug, "run \(run.directory): metrics/ \(rows) rows, \(collected ? "collected as they arrived" : "split from metrics.csv")")
        case .failure(let error):
            stats.writeErrors += 1
            stats.lastWriteError = "run \(run.directory): metric files: \(error)"
            log.limited(.warning, key: "metric-files-\(run.index)", "run \(run.directory): cannot write metrics/: \(error)")
        }
        if let error = done.error {
            writeFailed(run, error)
            return
        }
        finishedSessions += done.sessions
        remember(finished: run.runID, directory: run.directory)
        log.log(.info, "run \(run.directory) \(run.status)")
    }

    /// Blocks the writer until `until(finishing)` holds, taking finished runs as they come.
    private func waitForFinisher(_ events: inout [LoopEvent], until: ([String: RunFiles]) -> Bool) {
        while !until(finishing) {
            let jobs = lock.withLock { () -> [RunFinisher.Done] in
                while finishedJobs.isEmpty { lock.wait(untilMonotonic: Posix.monotonicNanos() + 1_000_000_000) }
                defer { finishedJobs.removeAll() }
                return finishedJobs
            }
            for job in jobs { runFinished(job, &events) }
        }
    }

    /// A run that comes back with params (recovered, reopened) counts them at their exact size.
    private func countParams(_ run: RunFiles) {
        run.paramsBound = (try? FrameEncoder(limits: RunFiles.checkpointLimits).frame(.params(run.params)).count) ?? 0
        paramsTotal += run.paramsBound
    }

    /// The merged config of one run may hold at most max_params_bytes_per_run (encoded), and all
    /// open runs' together max_params_bytes_total. `paramsBound` is an upper bound kept cheaply
    /// (frame sizes add up); only when it passes a limit is the merged tree measured exactly, so
    /// PARAMS that overwrite the same keys again and again never hit the limit. Refused PARAMS
    /// are counted (`records_refused`) and logged once per kind.
    private func admitParams(_ run: RunFiles, _ merged: Value, adding bytes: Int) -> Bool {
        var bound = run.paramsBound + bytes
        if bound > config.maxParamsBytesPerRun || paramsTotal - run.paramsBound + bound > config.maxParamsBytesTotal {
            bound = (try? FrameEncoder(limits: RunFiles.checkpointLimits).frame(.params(merged)).count) ?? .max
        }
        guard bound <= config.maxParamsBytesPerRun, paramsTotal - run.paramsBound + bound <= config.maxParamsBytesTotal else {
            stats.refusedRecords += 1
            log.limited(
                .warning, key: "params-limit", "run \(run.directory): PARAMS refused: max_params_bytes_per_run or max_params_bytes_total reached")
            return false
        }
        paramsTotal += bound - run.paramsBound
        run.paramsBound = bound
        return true
    }

    private func writeFailed(_ run: RunFiles, _ error: SystemError) {
        stats.writeErrors += 1
        stats.lastWriteError = "run \(run.directory): \(error)"
        if [ENOSPC, EDQUOT, EIO, EROFS, EFBIG].contains(error.errno) {
            if !stats.blocked { log.limited(.error, key: "blocked", "writes fail (\(error)): holding new records and retrying") }
            stats.blocked = true
        }
        log.limited(.error, key: "write-\(run.index)", "run \(run.directory): \(error)")
    }

    // MARK: rendering

    private func appendLog(_ line: LogLine, rank: Int32, to run: RunFiles) {
        let file = run.log
        var text: [UInt8] = []
        text.reserveCapacity(64 + line.logger.utf8.count + line.message.utf8.count)
        time.append(line.timestamp, to: &text)
        text.append(0x20)
        text.append(contentsOf: line.level.name.utf8)
        text.append(contentsOf: " [rank ".utf8)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { digits in
            let end = MetricLineFormatter.integer(Int64(rank), at: digits.baseAddress!)
            text.append(contentsOf: UnsafeBufferPointer(start: digits.baseAddress!, count: end - digits.baseAddress!))
        }
        text.append(contentsOf: "] ".utf8)
        text.append(contentsOf: line.logger.utf8)
        text.append(contentsOf: ": ".utf8)
        // Continuation lines of a multi-line message are indented, so every line of main.log
        // that starts at column 0 starts with a timestamp.
        for b in line.message.utf8 {
            if b == 0x0A {
                text.append(contentsOf: [0x0A, 0x20, 0x20, 0x20, 0x20])
            } else if b != 0x0D {
                text.append(b)
            }
        }
        text.append(0x0A)
        file.append(text)
        run.logCount += 1
        stats.recordsWritten += 1
        do { try file.lineAppended(text.count) } catch { writeFailed(run, error) }
    }

    // MARK: durability

    private func drainFiles() {
        for run in runs.values where run.isOpen {
            do {
                try run.log.drain()
                try run.metrics.drain()
                try run.events?.drain()
            } catch {
                writeFailed(run, error)
            }
        }
    }

    private func durabilityPoint(now: Int64, final: Bool) -> [LoopEvent] {
        var durable: [(SessionID, UInt64)] = []
        var failure: String?
        let due = runs.values.filter { $0.isOpen && ($0.needsDurability || $0.log.dirty || $0.metrics.dirty) }
        for (run, result) in zip(due, inParallel(due) { run throws(SystemError) in try run.makeDurable() }) {
            switch result {
            case .success(let moved):
                durable += moved
                stats.fsyncs += 3
            case .failure(let error):
                writeFailed(run, error)
                failure = "run \(run.directory): \(error)"
            }
        }
        // Barriers complete once the copies submitted before them have finished.
        let ready = pendingBarriers.filter { final || $0.copies <= copiesFinished }
        let snapshotDue = Int64(config.snapshotIntervalMs) * 1_000_000
        let stale = runs.values.filter { $0.snapshotStale && (final || !ready.isEmpty || now - $0.lastSnapshot >= snapshotDue) }
        let user = user
        for (run, result) in zip(stale, inParallel(stale) { run throws(SystemError) in try run.writeSnapshots(user: user, now: now, sync: false) }) {
            if case .failure(let error) = result { writeFailed(run, error) }
        }
        stats.batchesWritten += 1
        lastDurable = now
        if stats.batchesWritten % 64 == 1 { updateDiskFree() }
        var events: [LoopEvent] = []
        if !durable.isEmpty { events.append(.durable(durable)) }
        for b in ready {
            let unfinished = b.copies > copiesFinished ? "logd stopped before copies finished" : nil
            events.append(.barrierDone(b.id, error: failure ?? unfinished))
        }
        pendingBarriers.removeAll { final || $0.copies <= copiesFinished }
        return events
    }

    /// `body` for each run, the runs at once on the worker pool (each run's files are its own):
    /// their fsyncs wait together instead of one after another.
    private func inParallel<T>(_ runs: [RunFiles], _ body: @escaping (RunFiles) throws(SystemError) -> T) -> [Result<T, SystemError>] {
        var results = [Result<T, SystemError>?](repeating: nil, count: runs.count)
        results.withUnsafeMutableBufferPointer { out in
            let out = out
            let each = { (i: Int) in out[i] = Result { () throws(SystemError) in try body(runs[i]) } }
            if let workers { workers.forEach(runs.count, each) } else { for i in runs.indices { each(i) } }
        }
        return results.map { $0! }
    }

    private func updateDiskFree() {
        var st = statvfs()
        if fstatvfs(rootfd, &st) == 0 { stats.diskFreeBytes = Int64(st.f_bavail) * Int64(st.f_frsize) }
    }
}

extension String {
    func trimmingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" || last == " " { s = s.dropLast() }
        return String(s)
    }
}
