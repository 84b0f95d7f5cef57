#if canImport(Glibc)
    import Glibc
#endif
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
/// The hot path is `metric(_:_:step:)` with a `MetricHandle`: it stores a 33-byte frame in a
/// preallocated buffer under a lock — no allocation, no syscall on most calls. A background
/// thread sends batches to logd with nonblocking sends and resends what the daemon did not
/// acknowledge after a reconnect. When the buffer (`bufferBytes`) is full, new records are
/// dropped and counted (drop-newest), and the count reaches the daemon (run.yaml, status).
public final class Run: @unchecked Sendable {
    public let runID: String
    public let experiment: String
    public let name: String
    let store: FrameStore
    private var sender: Sender
    private var start: RunStart
    private let sink: Sink
    private var generation: Int
    private var finished = false
    private let bufferBytes: Int

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
        generation = ForkTracker.generation
        sender = Run.makeSender(store: store, sink: sink)
        store.append(.runStart(start))
        if case .map(let entries) = config, !entries.isEmpty { store.append(.params(config)) }
        ForkTracker.register(self)
        sender.start()
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
        if _slowPath(ForkTracker.generation != generation) { checkFork() }
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
    public private(set) var lastError: String?

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
                DatasetInfo(label: label, context: context.name, samples: samples, batchSize: batchSize, workers: workers,
                            shuffle: shuffle, batches: n)))
    }

    // MARK: barriers

    /// Waits until everything logged before this call is on disk and fsynced, or `timeout`
    /// seconds pass. Returns whether it completed.
    @discardableResult
    public func flush(timeout: Double = 10) -> Bool {
        checkFork()
        let target = store.counters.nextSeq - 1
        sender.requestFlush()
        return store.waitAcked(target, deadline: Clock.monotonic() + Int64(timeout * 1e9))
    }

    /// Ends the run: logs RUN_END, waits at most `timeout` seconds for delivery, stops the
    /// sender and reports what was delivered. Never hangs; calling it twice returns the report.
    @discardableResult
    public func finish(status: RunStatus = .finished, timeout: Double = 10) -> DeliveryReport {
        checkFork()
        if !finished {
            finished = true
            // The drop total must reach the daemon before RUN_END ends the run there.
            let dropped = store.counters.dropped
            if dropped > 0 { sender.waitDropsSent(dropped, deadline: Clock.monotonic() + Int64(timeout * 0.25e9)) }
            store.append(.runEnd(RunEnd(status: status, timestamp: Clock.realtime())))
            let done = flush(timeout: timeout)
            sender.stop()
            ForkTracker.unregister(self)
            lastCompleted = done
        }
        return report
    }

    private var lastCompleted = false

    /// Delivery counters so far.
    public var report: DeliveryReport {
        let c = store.counters
        return DeliveryReport(logged: c.logged + c.dropped, acknowledged: c.acked, dropped: c.dropped, completed: lastCompleted)
    }

    /// Whether the sender is connected to logd right now.
    public var isConnected: Bool { sender.connected }

    // MARK: fork

    /// In a forked child: the parent's frames and socket are not ours. Start a new producer
    /// session of the same run (a new RUN_START, same run id) on first use.
    func checkFork() {
        guard ForkTracker.generation != generation else { return }
        store.lock.lock()
        guard ForkTracker.generation != generation else {
            store.lock.unlock()
            return
        }
        generation = ForkTracker.generation
        store.resetAfterFork()
        store.lock.unlock()
        sender.abandonAfterFork()
        start.startTime = Clock.realtime()
        sender = Run.makeSender(store: store, sink: sink)
        store.append(.runStart(start))
        ForkTracker.register(self)
        sender.start()
    }

    // MARK: helpers

    private func openForArtifact(_ path: String, hash: Bool) -> (fd: Int32, size: UInt64, digest: Digest256)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            lastError = "cannot open \(path): \(String(cString: strerror(errno)))"
            return nil
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            lastError = "\(path) is not a regular file"
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
