#if canImport(Glibc)
    import Glibc
#endif
import Wire

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
    }

    struct KeyInfo {
        var run: Int32
        /// `context,key,` escaped for CSV.
        var middle: [UInt8]
        /// `,rank,source\n` escaped for CSV.
        var tail: [UInt8]
        /// The run's running summary of (context, key) this key updates (-1: none).
        var summary: Int
    }

    let config: LogdConfig
    let log: DaemonLog
    let rootfd: Int32
    private let post: @Sendable ([LoopEvent]) -> Void

    // Shared with the loop, under `lock`.
    private let lock = ConditionLock()
    private var queue: [[WriterItem]] = []
    private var queueBytes = 0
    private var sharedStats = Stats()
    /// Copies the copier finished, waiting for the writer.
    private var completions: [CopyResult] = []

    // Writer-confined.
    private var runs: [Int32: RunFiles] = [:]
    private var keys: [Int32: KeyInfo] = [:]
    private var stats = Stats()
    private var time = ISOTimeFormatter()
    private var lastDurable: Int64 = 0
    /// Barriers waiting for the next durability point, each with the copies it waits for
    /// (every copy submitted before it: `flush` returning means copies are on disk).
    private var pendingBarriers: [(id: UInt64, copies: UInt64)] = []
    private var copier: ArtifactCopier!
    private var copiesSubmitted: UInt64 = 0
    private var copiesFinished: UInt64 = 0
    /// Passed descriptors the writer is done with since the last report to the loop.
    private var descriptorsReleased = 0
    private var thread: NativeThread?
    private var scratch: [UInt8] = []
    private let user: String

    /// Opens the data root and recovers unfinished runs (before the loop starts).
    init(config: LogdConfig, log: DaemonLog, post: @escaping @Sendable ([LoopEvent]) -> Void) throws(SystemError) {
        self.config = config
        self.log = log
        self.post = post
        try Posix.makeDirectories(config.dataRoot)
        rootfd = open(config.dataRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootfd < 0 { throw SystemError("open", path: config.dataRoot) }
        user = Writer.userName(getuid())
        scratch.reserveCapacity(1 << 16)
        copier = ArtifactCopier { [unowned self] result in self.copyFinished(result) }
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
        guard let dir = fdopendir(dup(activefd)) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        for name in names.sorted() {
            guard let content = try? Posix.readFile(activefd, name) else { continue }
            let directory = String(decoding: content, as: UTF8.self).trimmingNewlines()
            let index = Int32(recovered.count)
            do {
                guard let run = try RunFiles.recover(index: index, rootfd: rootfd, directory: directory, config: config) else {
                    log.log(.warning, "run \(directory): no readable checkpoint; not resumable")
                    unlinkat(activefd, name, 0)
                    continue
                }
                runs[index] = run
                run.removeSnapshotTemps()
                var r = RecoveredRun(
                    index: index, runID: run.runID, directory: directory,
                    sessions: run.producers.map { ($0.info.session, $0.durableSeq) })
                for p in run.producers {
                    r.received[p.info.session] = p.receivedSeq
                    r.ranks[p.info.session] = p.info.start.rank
                }
                r.holes = run.holes()
                recovered.append(r)
                log.log(.info, "resumable run \(directory) (\(run.producers.count) producers)")
            } catch {
                log.log(.warning, "run \(directory): cannot reopen: \(error)")
            }
        }
        return recovered
    }

    // MARK: the door from the loop

    /// Adds one batch from the loop; returns the bytes now queued.
    @discardableResult
    func enqueue(_ items: [WriterItem], bytes: Int) -> Int {
        lock.withLock {
            queue.append(items)
            queueBytes += bytes
            lock.signal()
            return queueBytes
        }
    }

    var queuedBytes: Int { lock.withLock { queueBytes } }
    var currentStats: Stats { lock.withLock { sharedStats } }

    func start() {
        copier.start()
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
            var taken = 0
            lock.withLock {
                if queue.isEmpty && completions.isEmpty { lock.wait(untilMonotonic: Posix.monotonicNanos() + interval) }
                swap(&batch, &queue)
                swap(&done, &completions)
                taken = queueBytes
            }
            var events: [LoopEvent] = []
            for items in batch {
                for item in items {
                    if case .shutdown = item { stopping = true; continue }
                    apply(item, &events)
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
            }
            for result in done { copyDone(result, &events) }
            drainFiles()
            let now = Posix.monotonicNanos()
            let barrierReady = pendingBarriers.contains { $0.copies <= copiesFinished }
            if barrierReady || stopping || now - lastDurable >= interval {
                events += durabilityPoint(now: now, final: stopping)
            }
            lock.withLock {
                queueBytes -= taken
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
        post([.stopped])
    }

    private func apply(_ item: WriterItem, _ events: inout [LoopEvent]) {
        switch item {
        case .metric(let keyIndex, let m):
            guard let key = keys[keyIndex], let run = runs[key.run], run.isOpen else { return }
            appendMetric(m, key: key, to: run)
        case .log(let runIndex, let rank, let line):
            guard let run = runs[runIndex], run.isOpen else { return }
            appendLog(line, rank: rank, to: run)
        case .join(let runIndex, let producer):
            join(runIndex, producer, &events)
        case .defineKey(let keyIndex, let runIndex, let key, let rank):
            keys[keyIndex] = KeyInfo(
                run: runIndex, middle: csvField(key.context) + [0x2C] + csvField(key.key) + [0x2C],
                tail: [0x2C] + Array(String(rank).utf8) + [0x2C] + csvField(key.source) + [0x0A],
                summary: runs[runIndex]?.summarySlot(context: key.context, key: key.key, source: key.source) ?? -1)
        case .params(let runIndex, let value):
            guard let run = runs[runIndex] else { return }
            run.params = run.params.mergedParams(value.uniqueKeys())
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
            run.producers[p].status = end.name
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
                run.status = "running"
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
        if let existing = runs[runIndex] {
            run = existing
        } else {
            do {
                run = try RunFiles.create(index: runIndex, rootfd: rootfd, producer: producer, config: config)
                runs[runIndex] = run
                try markActive(run)
                log.log(.info, "run \(run.directory) started (run id \(run.runID))")
            } catch {
                stats.writeErrors += 1
                log.limited(.error, key: "create-run", "cannot create run directory: \(error)")
                return
            }
        }
        if let p = run.producerIndex(producer.session) {
            run.producers[p].info = producer
            run.producers[p].status = "running"
        } else {
            run.producers.append(RunFiles.Producer(info: producer))
        }
        if !run.isOpen {
            try? run.reopen()
            run.status = "running"
            run.endTime = nil
        }
        run.snapshotStale = true
        run.needsDurability = true
        events.append(.runOpened(run: runIndex, directory: run.directory))
    }

    private func activeName(_ run: RunFiles) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in run.directory.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return hexString(withUnsafeBytes(of: h.bigEndian, Array.init))
    }

    private func withActiveDir(_ body: (Int32) throws(SystemError) -> Void) throws(SystemError) {
        let statefd = try Posix.makeDirectory(rootfd, ".logd", mode: 0o700)
        defer { close(statefd) }
        let activefd = try Posix.makeDirectory(statefd, "active", mode: 0o700)
        defer { close(activefd) }
        try body(activefd)
    }

    private func markActive(_ run: RunFiles) throws(SystemError) {
        _ = try run.makeDurable()
        try withActiveDir { fd throws(SystemError) in
            try Posix.replaceFile(fd, activeName(run), Array((run.directory + "\n").utf8))
        }
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

    private func endRun(_ run: RunFiles, status: String, _ events: inout [LoopEvent]) {
        run.status = status
        run.endTime = Posix.realtimeNanos()
        run.snapshotStale = true
        if run.activeCopies > 0 {
            // Finished when the last copy is: the files stay open until then.
            run.deferredEnd = status
            return
        }
        run.deferredEnd = nil
        if status != "crashed" { run.abandonPendingCopies() }
        do {
            let durable = try run.makeDurable()
            if !durable.isEmpty { events.append(.durable(durable)) }
            try run.writeSnapshots(user: user, now: Posix.monotonicNanos())
            run.closeFiles()
            if status != "crashed" {
                try withActiveDir { fd throws(SystemError) in _ = unlinkat(fd, activeName(run), 0) }
                runs.removeValue(forKey: run.index)
                keys = keys.filter { $0.value.run != run.index }
            }
            log.log(.info, "run \(run.directory) \(status)")
        } catch {
            writeFailed(run, error)
        }
    }

    private func writeFailed(_ run: RunFiles, _ error: SystemError) {
        stats.writeErrors += 1
        log.limited(.error, key: "write-\(run.index)", "run \(run.directory): \(error)")
    }

    // MARK: rendering

    @inline(__always)
    private func appendMetric(_ m: Metric, key: KeyInfo, to run: RunFiles) {
        let file = run.metrics
        let before = file.buffer.count
        time.append(m.timestamp, to: &file.buffer)
        file.buffer.append(0x2C)
        if m.step != WireProtocol.noStep { appendInt(m.step, to: &file.buffer) }
        file.buffer.append(0x2C)
        file.buffer.append(contentsOf: key.middle)
        appendDouble(m.value, to: &file.buffer)
        file.buffer.append(contentsOf: key.tail)
        if key.summary >= 0 { run.summaries[key.summary].add(m.value, step: m.step) }
        run.metricCount += 1
        stats.recordsWritten += 1
        do { try file.lineAppended(file.buffer.count - before) } catch { writeFailed(run, error) }
    }

    private func appendLog(_ line: LogLine, rank: Int32, to run: RunFiles) {
        let file = run.log
        let before = file.buffer.count
        time.append(line.timestamp, to: &file.buffer)
        file.buffer.append(0x20)
        file.buffer.append(contentsOf: line.level.name.utf8)
        file.buffer.append(contentsOf: " [rank ".utf8)
        appendInt(Int64(rank), to: &file.buffer)
        file.buffer.append(contentsOf: "] ".utf8)
        file.buffer.append(contentsOf: line.logger.utf8)
        file.buffer.append(contentsOf: ": ".utf8)
        // Continuation lines of a multi-line message are indented, so every line of main.log
        // that starts at column 0 starts with a timestamp.
        for b in line.message.utf8 {
            if b == 0x0A {
                file.buffer.append(contentsOf: [0x0A, 0x20, 0x20, 0x20, 0x20])
            } else if b != 0x0D {
                file.buffer.append(b)
            }
        }
        file.buffer.append(0x0A)
        run.logCount += 1
        stats.recordsWritten += 1
        do { try file.lineAppended(file.buffer.count - before) } catch { writeFailed(run, error) }
    }

    /// Appends the decimal digits of `v` (callgrind showed the old tuple-buffer version at
    /// ~490 instructions per call on the metric path).
    private func appendInt(_ v: Int64, to out: inout [UInt8]) {
        if v < 0 { out.append(0x2D) }
        var n = v.magnitude
        var digits = 1
        var t = n
        while t >= 10 {
            t /= 10
            digits += 1
        }
        let start = out.count
        out.append(contentsOf: repeatElement(0x30, count: digits))
        var i = start + digits - 1
        repeat {
            out[i] = UInt8(truncatingIfNeeded: 0x30 &+ n % 10)
            n /= 10
            i -= 1
        } while n > 0
    }

    private func appendDouble(_ d: Double, to out: inout [UInt8]) {
        if d == d.rounded(), abs(d) < 1e15 {
            appendInt(Int64(d), to: &out)
            out.append(contentsOf: [0x2E, 0x30])
            if d == 0, d.sign == .minus { out.insert(0x2D, at: out.count - 3) }
            return
        }
        out.append(contentsOf: d.description.utf8)
    }

    private func csvField(_ s: String) -> [UInt8] {
        let needsQuotes = s.utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
            || s.utf8.first == 0x20 || s.utf8.last == 0x20
        guard needsQuotes else { return Array(s.utf8) }
        var out: [UInt8] = [0x22]
        for b in s.utf8 {
            if b == 0x22 { out.append(0x22) }
            out.append(b)
        }
        out.append(0x22)
        return out
    }

    // MARK: durability

    private func drainFiles() {
        for run in runs.values where run.isOpen {
            do {
                try run.log.drain()
                try run.metrics.drain()
            } catch {
                writeFailed(run, error)
            }
        }
    }

    private func durabilityPoint(now: Int64, final: Bool) -> [LoopEvent] {
        var durable: [(SessionID, UInt64)] = []
        var failure: String?
        for run in runs.values where run.isOpen && (run.needsDurability || run.log.dirty || run.metrics.dirty) {
            do {
                durable += try run.makeDurable()
                stats.fsyncs += 3
            } catch {
                writeFailed(run, error)
                failure = "run \(run.directory): \(error)"
            }
        }
        // Barriers complete once the copies submitted before them have finished.
        let ready = pendingBarriers.filter { final || $0.copies <= copiesFinished }
        let snapshotDue = Int64(config.snapshotIntervalMs) * 1_000_000
        for run in runs.values
        where run.snapshotStale && (final || !ready.isEmpty || now - run.lastSnapshot >= snapshotDue) {
            do { try run.writeSnapshots(user: user, now: now) } catch { writeFailed(run, error) }
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
