#if canImport(Glibc)
    import Glibc
#endif
import Synchronization
import Wire

/// A metric context: `training`, `validation`, `testing`, or a custom name.
public struct Context: Hashable, Sendable, ExpressibleByStringLiteral {
    public let name: String
    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { name = value }
    public static let training = Context("training")
    public static let validation = Context("validation")
    public static let testing = Context("testing")
}

/// An interned metric key: log through it on the hot path (`run.metric(loss, value, step:)`).
public struct MetricHandle: Sendable, Hashable {
    public let id: UInt32
}

/// What `finish` reports about delivery.
public struct DeliveryReport: Sendable, Equatable, CustomStringConvertible {
    /// Records the run logged (stored or dropped), RUN_START and RUN_END included.
    public var logged: UInt64
    /// Records the daemon acknowledged as durable on disk.
    public var acknowledged: UInt64
    /// Records dropped under the overflow policy (buffer full: drop newest).
    public var dropped: UInt64
    /// Records stored but not acknowledged when `finish` returned (daemon absent or slow).
    public var undelivered: UInt64 { logged - dropped - acknowledged }
    /// Whether the final flush completed within the timeout.
    public var completed: Bool

    public var description: String {
        "logged \(logged), acknowledged \(acknowledged), dropped \(dropped), undelivered \(undelivered)"
    }
}

/// A run being logged: the handle a training process keeps.
///
/// Every method is thread-safe and never blocks on the daemon, except `flush` and `finish`,
/// which wait at most their timeout. Nothing here throws into the training loop: failures are
/// counted (`report`) or returned as `false`.
///
/// The hot path is `metric(_:_:step:)` with a `MetricHandle`: it stores a 28-byte entry of an
/// open METRIC_BATCH frame in a preallocated buffer under a lock — no allocation, no syscall on
/// most calls. A background thread seals the batch and sends it to logd with nonblocking sends
/// (consecutive metrics cross the socket as one numbered frame of up to 146 samples), and
/// resends what the daemon did not acknowledge after a reconnect. When the buffer (`bufferBytes`) is full, new records are
/// dropped and counted (drop-newest), and the count reaches the daemon (run.yaml, status).
///
/// Locking: the frames and counters are under `store.lock` (the one lock the hot path takes);
/// the run's own state — its sender, RUN_START, how far `finish` got, `lastError` — is under
/// `stateLock`, which the hot path never takes. The hot path reads only `generation`, an atomic
/// (a plain load). Order: `ForkTracker`'s lock, then `stateLock`, then `store.lock`.
public final class Run: @unchecked Sendable {
    public let runID: String
    public let experiment: String
    public let name: String
    let store: FrameStore
    /// Guards every `var` below except `generation`.
    let stateLock = SDKLock()
    private var sender: Sender
    private var start: RunStart
    private let sink: Sink
    /// `ForkTracker.generation` when this process's producer session began. Written only after
    /// a fork, under `stateLock`, once the new session's RUN_START is stored.
    private let generation: Atomic<Int>
    private var finishState = FinishState.running
    private var lastCompleted = false
    private var error: String?
    private let bufferBytes: Int

    private enum FinishState {
        case running
        /// A `finish` call is waiting for delivery; others wait for it (`stateLock`'s condition).
        case finishing
        case finished
    }

    /// Starts a run: captures the process (host, pid, command line, working directory, git,
    /// ranks from the environment), logs RUN_START and `config`, and starts sending.
    ///
    /// - Parameters:
    ///   - runID: shared by DDP ranks; default `LOGD_RUN_ID`, else the launcher's job id, else random.
    ///   - bufferBytes: the bound on records held until the daemon acknowledges them.
    public init(
        experiment: String, name: String, config: Value = .map([]), tags: [String] = [], seed: Int64? = nil,
        runID: String? = nil, sink: Sink = .daemon(), bufferBytes: Int = 64 << 20
    ) {
        self.runID = runID ?? ProcessCapture.runID()
        self.experiment = experiment
        self.name = name
        self.sink = sink
        self.bufferBytes = bufferBytes
        let (rank, local, world) = ProcessCapture.ranks()
        let git = ProcessCapture.gitState()
        start = RunStart(
            runID: self.runID, experiment: experiment, name: name, tags: tags, rank: rank, localRank: local,
            worldSize: world, host: ProcessCapture.hostName(), commandLine: CommandLine.arguments,
            workingDirectory: ProcessCapture.workingDirectory(), gitCommit: git.commit, gitDirty: git.dirty, seed: seed,
            startTime: Clock.realtime())
        store = FrameStore(capacityBytes: bufferBytes)
        generation = Atomic(ForkTracker.generation)
        sender = Run.makeSender(store: store, sink: sink)
        store.append(.runStart(start))
        if case .map(let entries) = config, !entries.isEmpty { store.append(.params(config)) }
        ForkTracker.register(self)
        sender.start()
    }

    /// A run dropped without `finish`: stop its sender and forget it in the fork handlers.
    deinit {
        ForkTracker.unregister(self)
        // In a forked child that never used the run, the sender's thread is the parent's.
        if ForkTracker.generation == generation.load(ordering: .acquiring) { sender.stop() } else { sender.abandonAfterFork() }
    }

    private static func makeSender(store: FrameStore, sink: Sink) -> Sender {
        let session = SessionID(high: UInt64.random(in: 1...UInt64.max), low: UInt64.random(in: 0...UInt64.max))
        let transport: Sender.Transport
        switch sink {
        case .daemon(let socket):
            transport = .daemon(socketPath: socket ?? Run.defaultSocket())
        case .memory(let m):
            transport = .memory(m)
        case .none:
            transport = .discard
        }
        return Sender(store: store, transport: transport, session: session)
    }

    /// `$LOGD_SOCKET`, else `$XDG_RUNTIME_DIR/logd/logd.sock`, else `/tmp/logd-<uid>/logd.sock`.
    public static func defaultSocket() -> String {
        if let s = ProcessCapture.environment("LOGD_SOCKET") { return s }
        if let r = ProcessCapture.environment("XDG_RUNTIME_DIR") { return r + "/logd/logd.sock" }
        return "/tmp/logd-\(getuid())/logd.sock"
    }

    // MARK: metrics

    /// Interns (key, context, source) once; log through the handle on the hot path.
    public func key(_ key: String, context: Context = .training, source: String = "") -> MetricHandle {
        checkFork()
        let id = store.intern(key: key, context: context.name, source: source)
        if case .memory(let m) = sink { m.define([MetricKey(id: id, key: key, context: context.name, source: source)]) }
        return MetricHandle(id: id)
    }

    /// Logs one metric sample. The hot path: tens of nanoseconds, never blocks.
    @inline(__always)
    public func metric(_ key: MetricHandle, _ value: Double, step: Int64? = nil) {
        // An acquiring load is a plain load on x86-64; it pairs with checkFork's releasing store.
        if _slowPath(ForkTracker.generation != generation.load(ordering: .acquiring)) { checkFork() }
        _ = store.appendMetric(keyID: key.id, step: step ?? WireProtocol.noStep, timestamp: Clock.realtime(), value: value)
    }

    /// Logs one metric sample by name (interns the key; slower than a `MetricHandle`).
    public func metric(_ key: String, _ value: Double, step: Int64? = nil, context: Context = .training, source: String = "") {
        metric(self.key(key, context: context, source: source), value, step: step)
    }

    // MARK: params, text, artifacts, models, datasets

    /// Merges `tree` into the run's config (later values override earlier ones at the same key path).
    public func params(_ tree: Value) {
        checkFork()
        store.append(.params(tree))
    }

    /// Sets one config entry (`key` is a top-level name).
    public func param(_ key: String, _ value: Value) { params(.map([(key: key, value: value)])) }

    /// Logs a text line into the run's main.log.
    public func log(_ message: String, level: LogLevel = .info, logger: String = "main") {
        checkFork()
        store.append(.log(LogLine(level: level, timestamp: Clock.realtime(), logger: logger, message: message)))
    }

    /// Why the last artifact or model call returned false.
    public var lastError: String? {
        stateLock.lock()
        defer { stateLock.unlock() }
        return error
    }

    private func fail(_ message: String) {
        stateLock.lock()
        error = message
        stateLock.unlock()
    }

    /// Records a file the run used (`.input`) or produced (`.output`). With `copy`, the open
    /// file descriptor travels to logd, which copies the file into the run's `artifacts/`
    /// (it never opens your path with its own rights); otherwise path, size and sha256 are
    /// recorded. Returns false (see `lastError`) if the file cannot be read.
    @discardableResult
    public func logArtifact(
        path: String, context: Context = .training, step: Int64? = nil, role: ArtifactRole = .output, copy: Bool = true
    ) -> Bool {
        checkFork()
        guard let opened = openForArtifact(path, hash: !copy) else { return false }
        let record = Artifact(
            context: context.name, step: step ?? WireProtocol.noStep, role: role, mode: copy ? .copy : .reference,
            fileName: baseName(path), originalPath: absolute(path), size: opened.size, sha256: opened.digest,
            timestamp: Clock.realtime())
        return store.append(.artifact(record), passing: copy ? opened.fd : closeAndReturn(opened.fd))
    }

    /// Describes a model: parameter count, memory and layers (a value tree).
    public func logModel(name: String, parameterCount: UInt64, memoryBytes: UInt64, layers: Value = .list([])) {
        checkFork()
        store.append(.modelInfo(ModelInfo(name: name, parameterCount: parameterCount, memoryBytes: memoryBytes, layers: layers)))
    }

    /// Saves a model file as the next version of `name` (logd numbers versions; never overwrites).
    @discardableResult
    public func saveModelVersion(name: String, path: String, step: Int64? = nil, context: Context = .training, copy: Bool = true)
        -> Bool
    {
        checkFork()
        guard let opened = openForArtifact(path, hash: !copy) else { return false }
        let record = ModelVersion(
            modelName: name, context: context.name, step: step ?? WireProtocol.noStep, mode: copy ? .copy : .reference,
            fileName: baseName(path), originalPath: absolute(path), size: opened.size, sha256: opened.digest,
            timestamp: Clock.realtime())
        return store.append(.modelVersion(record), passing: copy ? opened.fd : closeAndReturn(opened.fd))
    }

    /// Describes a data set and its loader.
    public func logDataset(
        label: String, context: Context = .training, samples: UInt64, batchSize: UInt32, workers: UInt32 = 0,
        shuffle: Bool = false, batches: UInt64? = nil
    ) {
        checkFork()
        let n = batches ?? (batchSize > 0 ? (samples + UInt64(batchSize) - 1) / UInt64(batchSize) : 0)
        store.append(
            .dataset(
                DatasetInfo(
                    label: label, context: context.name, samples: samples, batchSize: batchSize, workers: workers,
                    shuffle: shuffle, batches: n)))
    }

    // MARK: barriers

    /// Waits until everything logged before this call is on disk and fsynced, or `timeout`
    /// seconds pass. Returns whether it completed.
    @discardableResult
    public func flush(timeout: Double = 10) -> Bool {
        checkFork()
        let target = store.flushTarget()  // seals the open batch: it is sent before the FLUSH
        currentSender.requestFlush()
        return store.waitAcked(target, deadline: Clock.monotonic() + deadline(after: timeout))
    }

    /// Ends the run: logs RUN_END, waits at most `timeout` seconds for delivery, stops the
    /// sender and reports what was delivered. Never hangs; calling it twice returns the report.
    /// Called from several threads at once, one call ends the run (one RUN_END); the others
    /// wait for it (at most their own `timeout`) and return the same report.
    @discardableResult
    public func finish(status: RunStatus = .finished, timeout: Double = 10) -> DeliveryReport {
        checkFork()
        stateLock.lock()
        switch finishState {
        case .finished:
            stateLock.unlock()
            return report
        case .finishing:
            let end = Clock.monotonic() + deadline(after: timeout)
            while case .finishing = finishState, Clock.monotonic() < end { stateLock.wait(until: end) }
            stateLock.unlock()
            return report
        case .running:
            finishState = .finishing
        }
        let sender = self.sender
        stateLock.unlock()
        // The drop total must reach the daemon before RUN_END ends the run there.
        let dropped = store.counters.dropped
        if dropped > 0 { sender.waitDropsSent(dropped, deadline: Clock.monotonic() + deadline(after: timeout * 0.25)) }
        // RUN_END waits for room (a full buffer drains once logd reads again): dropped, it
        // would leave the run `crashed` although everything else arrived.
        let runEnd = Record.runEnd(RunEnd(status: status, timestamp: Clock.realtime()))
        let roomBy = Clock.monotonic() + deadline(after: timeout * 0.5)
        var stored = store.append(runEnd, countingDrop: false)
        while !stored, Clock.monotonic() < roomBy {
            usleep(1000)
            stored = store.append(runEnd, countingDrop: false)
        }
        if !stored { store.append(runEnd) }  // counted as dropped
        let done = flush(timeout: timeout)
        sender.stop()
        ForkTracker.unregister(self)
        stateLock.lock()
        lastCompleted = done
        finishState = .finished
        stateLock.broadcast()
        stateLock.unlock()
        return report
    }

    /// Delivery counters so far.
    public var report: DeliveryReport {
        let c = store.counters
        stateLock.lock()
        defer { stateLock.unlock() }
        return DeliveryReport(logged: c.logged + c.dropped, acknowledged: c.acked, dropped: c.dropped, completed: lastCompleted)
    }

    /// Whether the sender is connected to logd right now.
    public var isConnected: Bool { currentSender.connected }

    /// The sender of this process's producer session (replaced after a fork).
    private var currentSender: Sender {
        stateLock.lock()
        defer { stateLock.unlock() }
        return sender
    }

    /// `seconds` as nanoseconds, clamped so that no timeout (huge, infinite, NaN, negative)
    /// can trap the conversion.
    private func deadline(after seconds: Double) -> Int64 {
        guard seconds > 0 else { return 0 }
        return seconds < 1e9 ? Int64(seconds * 1e9) : 1_000_000_000 * 1_000_000_000
    }

    // MARK: fork

    /// In a forked child: the parent's frames and socket are not ours. Start a new producer
    /// session of the same run (a new RUN_START, same run id) on first use.
    /// Other threads of the child that log meanwhile wait on `stateLock` here until RUN_START
    /// is stored, so it stays frame 1 of the new session.
    func checkFork() {
        let now = ForkTracker.generation
        guard now != generation.load(ordering: .acquiring) else { return }
        stateLock.lock()
        guard now != generation.load(ordering: .acquiring) else {
            stateLock.unlock()
            return
        }
        store.lock.lock()
        store.resetAfterFork()
        store.lock.unlock()
        sender.abandonAfterFork()
        start.startTime = Clock.realtime()
        sender = Run.makeSender(store: store, sink: sink)
        store.append(.runStart(start))
        generation.store(now, ordering: .releasing)
        // A `finish` that was under way in the parent has no thread here: the child may finish.
        if case .finishing = finishState { finishState = .running }
        sender.start()
        stateLock.unlock()
        // Outside `stateLock`: the fork handlers take ForkTracker's lock before it.
        ForkTracker.register(self)
    }

    // MARK: helpers

    private func openForArtifact(_ path: String, hash: Bool) -> (fd: Int32, size: UInt64, digest: Digest256)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            fail("cannot open \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            fail("\(path) is not a regular file")
            close(fd)
            return nil
        }
        var digest = Digest256.zero
        if hash {
            var h = SHA256()
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            var offset: off_t = 0
            while true {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
                if n <= 0 { break }
                buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                offset += off_t(n)
            }
            digest = h.finalize()
        }
        return (fd, UInt64(st.st_size), digest)
    }

    private func closeAndReturn(_ fd: Int32) -> Int32 {
        close(fd)
        return -1
    }

    private func baseName(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : ProcessCapture.workingDirectory() + "/" + path
    }
}
