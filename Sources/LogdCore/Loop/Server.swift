#if canImport(Glibc)
    import Glibc
#endif
import CLibUV
import Wire
import LogdSystem

/// The daemon's event loop: accepts clients on the Unix socket, reads into bounded
/// per-connection buffers, decodes with Wire, routes records to runs and hands them to the
/// writer in batches. It never writes a file, fsyncs, or renders text.
///
/// Threading: loop-confined, except `post(_:)` — the one door from other threads (a locked
/// queue + `uv_async_send`), used by the writer for acknowledgements and flush completions.
public final class Server: @unchecked Sendable {
    public enum Lifecycle { case starting, running, draining, stopped }

    public static let version = "logd 0.1.0"

    /// A class: the connection that owns a session holds it too, so the per-frame numbering
    /// (`numbered`, the METRIC fast path) updates it without a dictionary lookup and copy.
    final class SessionState {
        var run: Int32?
        /// Highest frame number received (frames up to it are skipped when resent).
        var received: UInt64
        /// Highest frame number durable on disk.
        var durable: UInt64
        var connection: Int?
        var end: ProducerEnd?
        var dropped: UInt64 = 0
        /// Frame numbers up to `received` that are taken again when resent: copy-mode frames
        /// whose copy a restart interrupted (their descriptor was lost with the old process).
        var holes: Set<UInt64> = []

        init(
            run: Int32?, received: UInt64, durable: UInt64, connection: Int? = nil, end: ProducerEnd? = nil, holes: Set<UInt64> = []
        ) {
            self.run = run
            self.received = received
            self.durable = durable
            self.connection = connection
            self.end = end
            self.holes = holes
        }
    }

    final class RunState {
        let index: Int32
        let runID: String
        let experiment: String
        let name: String
        var directory: String?
        var sessions: Set<SessionID> = []
        var records: UInt64 = 0
        /// The largest world size any producer announced: a run of N ranks ends only after N
        /// producers have ended (a rank that finishes early does not end its peers' run).
        var worldSize = 1
        var status = RunPhase.running
        /// Set for runs recovered at start-up: when they count as crashed if nobody returns.
        var graceDeadline: Int64?
        /// Every joined producer has ended but fewer than `worldSize` joined: the run ends at
        /// this time unless another rank joins (rank_wait_s).
        var rankWaitDeadline: Int64?
        /// The uid whose producer created the run (the kernel's word): only it (or root) may
        /// join, log into or end the run.
        var owner: UInt32 = 0
        /// Each distinct metric key of the run, by name and rank, and its writer index: keys
        /// defined again (a reconnect, another connection) reuse it. Bounded by max_keys_per_run.
        var keyIndex: [KeyName: Int32] = [:]
        var keyBytes = 0

        init(index: Int32, runID: String, experiment: String, name: String) {
            self.index = index
            self.runID = runID
            self.experiment = experiment
            self.name = name
        }
    }

    struct KeyName: Hashable {
        var context: String
        var key: String
        var source: String
        var rank: Int32
    }

    /// The largest frame number and counter value logd accepts from a client: far beyond any
    /// real producer, and small enough that sums and Int64 conversions never overflow.
    static let maxSeq: UInt64 = 1 << 62
    static let maxCounter: UInt64 = 1 << 53
    /// A connection's key id refused by a limit: metrics that use it are dropped and counted.
    static let refusedKey: Int32 = -1
    /// Replies queued for a client that does not read them: past this, logd stops reading
    /// that client's requests until it reads (its memory stays bounded).
    static let outputHighWater = 64 << 10

    enum BarrierWaiter {
        /// `through`: the session's last frame received before the FLUSH.
        case producer(connection: Int, token: UInt64, session: SessionID, through: UInt64)
        case control(connection: Int, requestID: UInt32, deadline: Int64, recordsAtRequest: UInt64)
    }

    let config: LogdConfig
    let log: DaemonLog
    let limits: WireLimits
    private(set) var lifecycle = Lifecycle.starting
    let loop: UnsafeMutablePointer<uv_loop_t>
    private var listenFD: Int32
    private let ownsSocketPath: Bool
    private var listenPoll: UnsafeMutablePointer<uv_poll_t>?
    private let door: UnsafeMutablePointer<uv_async_t>
    private let timer: UnsafeMutablePointer<uv_timer_t>
    private var signals: [UnsafeMutablePointer<uv_signal_t>] = []
    var writer: Writer!

    // The door (any thread → loop), under doorLock.
    private let doorLock = ConditionLock()
    private var doorEvents: [LoopEvent] = []

    // Loop-confined state.
    var connections: [Int: Connection] = [:]
    var sessions: [SessionID: SessionState] = [:]
    var runsByID: [String: RunState] = [:]
    var runs: [Int32: RunState] = [:]
    private var nextConnectionID = 1
    private var nextRunIndex: Int32 = 0
    private var nextKeyIndex: Int32 = 0
    /// Key indices of forgotten runs, taken again first: indices stay dense (the writer keeps
    /// its keys in an array indexed by them).
    var freeKeyIndices: [Int32] = []
    /// Bumped whenever a run leaves `runs`: a connection's cached run is valid while equal.
    var runsEpoch: UInt64 = 0
    private var nextBarrier: UInt64 = 1
    var barriers: [UInt64: BarrierWaiter] = [:]
    /// Sessions of runs the writer's finisher is finishing (`.runFinishing` to `.runFinished`):
    /// their last acknowledgements are held until the run is finished.
    var finishingSessions: Set<SessionID> = []
    /// Producer FLUSHes of those sessions whose barrier completed below a frame sent before the
    /// FLUSH: FLUSH_DONE waits for the acknowledgement (or the run's finish), so it never reports
    /// a durable number below such a frame. They stay counted in `pendingBarriers` until sent.
    var heldFlushes: [SessionID: [(connection: Int, token: UInt64, through: UInt64)]] = [:]
    /// Each producer session's rank, from its RUN_START.
    var ranks: [SessionID: Int32] = [:]
    /// Sessions of finished runs and their last frame (bounded, most recent kept): a producer
    /// that resends after its run ended (it missed the last acknowledgement) is welcomed with
    /// everything durable, and its resent frames are skipped, never written twice.
    var finishedSessions = RecentMap<SessionID, UInt64>(capacity: 100_000)
    /// recvmsg's control buffer (loop-confined, reused for every read).
    private let control = UnsafeMutableRawPointer.allocate(byteCount: DescriptorPassing.controlBytes, alignment: 16)
    /// Copy-mode artifacts handed to the writer whose copy has not finished: each holds an open
    /// descriptor, so above `maxCopiesInFlight` the loop stops reading (backpressure).
    var copiesInFlight = 0
    static let maxCopiesInFlight = 256
    private var batch: [WriterItem] = []
    /// Metrics after the last item of `batch`, handed over as one `.metrics` item
    /// (`sealMetrics`) before anything else is batched, so the order is kept.
    private var batchMetrics: [Metric] = []
    private var batchBytes = 0
    /// Bytes of the frame being handled, so items that carry it are weighed by it.
    var frameBytes = 0
    /// Connections' receive buffers beyond their initial size: partially received big frames.
    var partialFrameBytes = 0
    private(set) var readingPaused = false
    let startedAt = Posix.monotonicNanos()

    // Counters for status.
    var totalRecords: UInt64 = 0
    var totalBytes: UInt64 = 0
    var accepted = 0
    var refused = 0
    var malformed = 0
    /// Times the loop stopped reading sockets because the writer queue passed its bound.
    var backpressurePauses = 0
    var duplicatesSkipped: UInt64 = 0
    /// Records refused by a per-run limit (keys, params) or a bad value; counted, not written.
    var refusedRecords: UInt64 = 0
    /// Keys of the runs in `runs` (max_keys_total).
    var totalKeys = 0
    var rate = 0.0
    private var rateSample: (time: Int64, records: UInt64) = (0, 0)

    /// Binds the socket (or adopts `listenFD`), opens the data root and recovers unfinished runs.
    public init(config: LogdConfig, log: DaemonLog, listenFD adopted: Int32? = nil) throws {
        self.config = config
        self.log = log
        limits = WireLimits(maxFrameBytes: config.maxFrameBytes)
        if let adopted {
            listenFD = adopted
            ownsSocketPath = false
            _ = fcntl(adopted, F_SETFL, fcntl(adopted, F_GETFL) | O_NONBLOCK)
        } else {
            listenFD = try SocketListener.bind(path: config.socket, group: config.socketGroup)
            ownsSocketPath = true
        }
        loop = .allocate(capacity: 1)
        door = .allocate(capacity: 1)
        timer = .allocate(capacity: 1)
        let me = Unmanaged.passUnretained(self).toOpaque()
        do {
            try LibUV.check(uv_loop_init(loop), "uv_loop_init")
            try LibUV.check(uv_async_init(loop, door, c_writerDoor), "uv_async_init")
            door.pointee.data = me
            try LibUV.check(uv_timer_init(loop, timer), "uv_timer_init")
            timer.pointee.data = me
            // SIGTERM / SIGINT are handled from here on (libuv queues them until the loop runs),
            // so a stop right after the socket starts listening still drains, even while the
            // writer recovers runs below.
            for signum in [SIGTERM, SIGINT] {
                let h = UnsafeMutablePointer<uv_signal_t>.allocate(capacity: 1)
                try LibUV.check(uv_signal_init(loop, h), "uv_signal_init")
                h.pointee.data = me
                try LibUV.check(uv_signal_start(h, c_signalReceived, signum), "uv_signal_start")
                signals.append(h)
            }
        } catch {
            close(listenFD)
            if ownsSocketPath { unlink(config.socket) }
            throw error
        }
        do {
            writer = try Writer(config: config, log: log) { [unowned self] events in self.post(events) }
        } catch {
            close(listenFD)
            if ownsSocketPath { unlink(config.socket) }
            throw error
        }
        for run in writer.recover() { adoptRecovered(run) }
        for (session, seq) in writer.finishedSessions { rememberFinished(session, seq) }
    }

    /// Runs the loop until a drain completes (SIGTERM / SIGINT / `stop()`).
    public func run() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let poll = UnsafeMutablePointer<uv_poll_t>.allocate(capacity: 1)
        LibUV.check(uv_poll_init(loop, poll, listenFD), "uv_poll_init", log: log)
        poll.pointee.data = me
        LibUV.check(uv_poll_start(poll, Int32(UV_READABLE.rawValue), c_listenerReadable), "uv_poll_start", log: log)
        listenPoll = poll
        LibUV.check(uv_timer_start(timer, c_maintenanceTick, 100, 100), "uv_timer_start", log: log)
        writer.start()
        lifecycle = .running
        rateSample = (Posix.monotonicNanos(), 0)
        log.log(.info, "listening on \(ownsSocketPath ? config.socket : "an adopted socket"), writing runs to \(config.dataRoot)")
        SystemdNotify.send("READY=1\nSTATUS=accepting connections")
        LibUV.check(uv_run(loop, UV_RUN_DEFAULT), "uv_run", log: log)
        writer.join()
        LibUV.check(uv_loop_close(loop), "uv_loop_close", log: log)
        lifecycle = .stopped
        log.log(.info, "stopped")
    }

    /// Indexes wrap instead of trapping after 2^31 allocations (a long-lived daemon); an index
    /// is reused only that much later, long after its run ended.
    func allocateRunIndex() -> Int32 {
        defer { nextRunIndex = nextRunIndex == .max ? 0 : nextRunIndex + 1 }
        return nextRunIndex
    }

    func reserveRunIndex(after index: Int32) { nextRunIndex = max(nextRunIndex, index == .max ? index : index + 1) }

    func allocateKeyIndex() -> Int32 {
        if let reused = freeKeyIndices.popLast() { return reused }
        defer { nextKeyIndex = nextKeyIndex == .max ? 0 : nextKeyIndex + 1 }
        return nextKeyIndex
    }

    func rememberFinished(_ session: SessionID, _ seq: UInt64) { finishedSessions.set(seq, for: session) }

    // MARK: the door from other threads

    /// Thread-safe: queues events for the loop and wakes it (sends coalesce; all are drained).
    func post(_ events: [LoopEvent]) {
        doorLock.withLock { doorEvents += events }
        uv_async_send(door)
    }

    func drainDoor() {
        var events: [LoopEvent] = []
        doorLock.withLock { swap(&events, &doorEvents) }
        for event in events {
            switch event {
            case .durable(let marks):
                for (session, seq) in marks { acknowledge(session, seq) }
            case .barrierDone(let id, let error):
                completeBarrier(id, error: error)
            case .runFinishing(let list):
                finishingSessions.formUnion(list)
            case .runFinished(let list):
                for session in list {
                    finishingSessions.remove(session)
                    releaseHeldFlushes(session, all: true)
                }
            case .runOpened(let index, let directory):
                runs[index]?.directory = directory
            case .queueDrained:
                resumeReadingIfDrained()
            case .copiesFinished(let n):
                copiesInFlight -= n
                resumeReadingIfDrained()
            case .stopped:
                finishStop()
            }
        }
    }

    // MARK: accepting

    func acceptReady(status: Int32) {
        guard lifecycle == .running || lifecycle == .starting else { return }
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            if fd < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK {
                    log.limited(.warning, key: "accept", "accept: \(SystemError("accept"))")
                }
                return
            }
            let (pid, uid) = SocketListener.peerCredentials(fd)
            if connections.count >= config.maxConnections {
                refused += 1
                var out: [UInt8] = []
                try? FrameEncoder().encode(.error(ErrorReport(code: .refused, message: "too many connections")), into: &out)
                _ = out.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                close(fd)
                log.limited(.warning, key: "refused", "refused a connection from pid \(pid): max_connections reached")
                continue
            }
            let conn = Connection(id: nextConnectionID, fd: fd, loop: loop, pid: pid, uid: uid, limits: limits)
            if conn.pollInitFailed {
                // The handle was never initialized: it must not reach uv_close.
                refused += 1
                log.limited(.error, key: "uv-poll-init", "uv_poll_init failed for a connection from pid \(pid); closed")
                conn.poll.deallocate()
                close(fd)
                continue
            }
            nextConnectionID += 1
            accepted += 1
            connections[conn.id] = conn
            conn.poll.pointee.data = Unmanaged.passRetained(ConnectionBox(conn, self)).toOpaque()
            setPoll(conn, readable: mayRead(conn))
        }
    }

    /// Whether logd reads this connection now. Backpressure (the writer queue is full, or writes
    /// are failing) pauses producers only: control connections and ones still awaiting HELLO add
    /// nothing to the writer's queue worth pausing for (a barrier is one small item), so
    /// `logctl status` answers and shows the condition.
    func mayRead(_ conn: Connection) -> Bool {
        lifecycle == .draining || !readingPaused || conn.state == .control || conn.state == .awaitingHello
    }

    func setPoll(_ conn: Connection, readable: Bool) {
        guard conn.state != .closed else { return }
        var events: Int32 = 0
        if readable && conn.out.count <= Server.outputHighWater { events |= Int32(UV_READABLE.rawValue) }
        if !conn.out.isEmpty || conn.pendingAck != nil { events |= Int32(UV_WRITABLE.rawValue) }
        guard events != conn.pollEvents else { return }
        conn.pollEvents = events
        if events == 0 {
            LibUV.check(uv_poll_stop(conn.poll), "uv_poll_stop", log: log)
        } else if !LibUV.check(uv_poll_start(conn.poll, events, c_connectionEvent), "uv_poll_start", log: log) {
            closeConnection(conn, reason: "cannot poll its socket")
        }
    }

    // MARK: reading

    func connectionEvent(_ conn: Connection, status: Int32, events: Int32) {
        if status < 0 {
            closeConnection(conn, reason: "poll error \(status)")
            return
        }
        if events & Int32(UV_WRITABLE.rawValue) != 0 { flushOutput(conn) }
        if events & Int32(UV_READABLE.rawValue) != 0 { readAvailable(conn, budget: 1 << 20) }
        flushBatch()
    }

    /// Reads until EAGAIN or `budget` bytes, decoding frames as they complete.
    func readAvailable(_ conn: Connection, budget: Int) {
        var budget = budget
        while budget > 0, conn.state != .closed, mayRead(conn),
            conn.out.count <= Server.outputHighWater || lifecycle == .draining
        {
            if conn.end == conn.capacity { conn.reserve(frameBytes: conn.capacity) }
            let got = DescriptorPassing.receive(conn.fd, into: conn.buffer + conn.end, count: conn.capacity - conn.end, control: control)
            let n = got.count
            if !got.fds.isEmpty || got.truncated {
                conn.passedFDs += got.fds
                if got.truncated || conn.passedFDs.count > Connection.maxPassedFDs {
                    return protocolError(
                        conn, code: .protocolViolation,
                        message:
                            "too many file descriptors passed (at most \(Connection.maxPassedFDs) unpaired, \(DescriptorPassing.maxPerMessage) per message)"
                    )
                }
            }
            if n > 0 {
                conn.end += n
                conn.bytesIn += UInt64(n)
                totalBytes += UInt64(n)
                budget -= n
                decodeFrames(conn)
                continue
            }
            // ECONNRESET on a Unix socket: the peer closed with our replies unread — an end of
            // stream like any other (a partial frame left behind is counted the same way).
            if n == 0 || (n < 0 && errno == ECONNRESET) {
                decodeFrames(conn)
                if conn.state != .closed {
                    if conn.bufferedBytes > 0 {
                        malformed += 1
                        log.limited(
                            .warning, key: "eof-\(conn.id % 16)",
                            "connection \(conn.id) (pid \(conn.peerPID)) closed inside a frame (\(conn.bufferedBytes) bytes)")
                    }
                    closeConnection(conn, reason: nil)
                }
                return
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return }
            closeConnection(conn, reason: "recv: \(SystemError("recv"))")
            return
        }
    }

    private func decodeFrames(_ conn: Connection) {
        while conn.state != .closed {
            if conn.bufferedBytes >= Server.metricFrameBytes, let state = conn.sessionState, let run = fastRun(conn, state) {
                // The session and its run held once for a stretch of metric frames (each lookup
                // is a retain and a release).
                var taken = false
                while conn.bufferedBytes >= Server.metricFrameBytes, fastMetrics(conn, state, run) {
                    taken = true
                    if batch.count + batchMetrics.count >= 4096 {
                        markReceived(conn)
                        flushBatch()
                    }
                }
                if taken { continue }
            }
            let available = UnsafeRawBufferPointer(start: conn.buffer + conn.start, count: conn.bufferedBytes)
            let decoded: (record: Record, consumed: Int)?
            do {
                decoded = try conn.decoder.decode(available)
            } catch {
                protocolError(conn, code: .malformedFrame, message: error.description, wire: error)
                return
            }
            guard let (record, consumed) = decoded else {
                // Need more: make sure the whole announced frame fits.
                if let length = try? conn.decoder.frameLength(available) {
                    let total = WireProtocol.lengthPrefixBytes + length
                    if total > conn.capacity - conn.start {
                        // One budget for every connection's partial big frames (max_partial_frame_bytes).
                        let extra = max(0, total - Connection.initialBufferBytes)
                        if partialFrameBytes - conn.accountedBytes + extra > config.maxPartialFrameBytes {
                            return protocolError(
                                conn, code: .refused,
                                message:
                                    "logd is holding max_partial_frame_bytes (\(config.maxPartialFrameBytes)) of partial frames; send smaller frames or retry"
                            )
                        }
                        conn.reserve(frameBytes: total)
                        account(conn)
                    }
                }
                break
            }
            conn.start += consumed
            frameBytes = consumed
            handle(record, on: conn)
            if batch.count + batchMetrics.count >= 4096 {
                markReceived(conn)
                flushBatch()
            }
        }
        if conn.start == conn.end {
            conn.start = 0
            conn.end = 0
            conn.shrinkIfIdle()
            account(conn)
        }
        markReceived(conn)
    }

    static let metricFrameBytes = WireProtocol.lengthPrefixBytes + 1 + Metric.bodyBytes

    /// The run of a producer's session for `fastMetrics`, when it has one.
    @inline(__always)
    private func fastRun(_ conn: Connection, _ state: SessionState) -> RunState? {
        guard conn.state == .producer, let runIndex = state.run else { return nil }
        if conn.runEpoch == runsEpoch, conn.cachedRunIndex == runIndex, let cached = conn.cachedRun { return cached }
        guard let found = runs[runIndex] else { return nil }
        conn.cachedRun = found
        conn.cachedRunIndex = runIndex
        conn.runEpoch = runsEpoch
        return found
    }

    /// The fast path for the bulk of the traffic: a METRIC frame, or a whole METRIC_BATCH, of a
    /// producer whose next frame number follows the last, into a known running run, every key
    /// defined. Decoded from the buffer straight into writer items: no `Record`, no hashing.
    /// Anything else (or any doubt) returns false and takes the general path, which decodes
    /// and checks everything. `run` is `fastRun`'s, held by the caller for a stretch of frames.
    @inline(__always)
    private func fastMetrics(_ conn: Connection, _ state: SessionState, _ run: RunState) -> Bool {
        // Still the session's run (a frame taken on the general path may have changed it).
        guard conn.state == .producer, state.run == conn.cachedRunIndex, conn.runEpoch == runsEpoch else { return false }
        let p = UnsafeRawPointer(conn.buffer + conn.start)
        let length = Int(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        let kind = p.load(fromByteOffset: 4, as: UInt8.self)
        let seq = conn.nextSeq
        guard seq == state.received &+ 1, seq < Server.maxSeq else { return false }
        let body = p + 5
        if kind == FrameKind.metric.rawValue, length == 1 + Metric.bodyBytes {
            guard let key = conn.keyIndex(UInt32(littleEndian: body.loadUnaligned(as: UInt32.self))), key >= 0 else { return false }
            enqueueMetric(key, body)
            run.records += 1
            conn.records += 1
            totalRecords += 1
            frameBytes = Server.metricFrameBytes
        } else if kind == FrameKind.metricBatch.rawValue, length >= 5, WireProtocol.lengthPrefixBytes + length <= conn.bufferedBytes {
            let count = Int(UInt32(littleEndian: body.loadUnaligned(as: UInt32.self)))
            guard count <= limits.maxCollectionCount, length == 5 + count * Metric.bodyBytes, length <= limits.maxFrameBytes else {
                return false
            }
            // Every key defined (refused ones are counted and skipped, as the general path does).
            for i in 0..<count {
                guard conn.keyIndex(UInt32(littleEndian: (body + 4 + i * Metric.bodyBytes).loadUnaligned(as: UInt32.self))) != nil else {
                    return false
                }
            }
            frameBytes = WireProtocol.lengthPrefixBytes + length
            for i in 0..<count {
                let entry = body + 4 + i * Metric.bodyBytes
                let key = conn.keyIndex(UInt32(littleEndian: entry.loadUnaligned(as: UInt32.self)))!
                if key == Server.refusedKey {
                    refuse(conn, "a metric of a refused key")
                } else {
                    enqueueMetric(key, entry)
                }
            }
            run.records += UInt64(max(1, count))
            conn.records += UInt64(max(1, count))
            totalRecords += UInt64(max(1, count))
        } else {
            return false
        }
        conn.nextSeq = seq + 1
        state.received = seq
        conn.unmarkedSeq = true
        conn.start += WireProtocol.lengthPrefixBytes + length
        return true
    }

    /// One METRIC body (28 bytes: key id, step, timestamp, value) for the writer.
    @inline(__always)
    private func enqueueMetric(_ key: Int32, _ body: UnsafeRawPointer) {
        enqueueMetric(
            Metric(
                keyID: 0, step: Int64(littleEndian: body.loadUnaligned(fromByteOffset: 4, as: Int64.self)),
                timestamp: Int64(littleEndian: body.loadUnaligned(fromByteOffset: 12, as: Int64.self)),
                value: Double(bitPattern: UInt64(littleEndian: body.loadUnaligned(fromByteOffset: 20, as: UInt64.self)))),
            key: key)
    }

    /// What a metric weighs in the writer queue's bound: 32 bytes of memory, counted double for
    /// the writer's work per metric, so a full queue (`writer_queue_bytes`) stays about as many
    /// metrics — and as much writing for a flush to wait behind — as when each was a 48-byte
    /// `WriterItem`.
    static let metricWeight = 64

    /// A metric of writer key index `key` for the writer (it travels in `keyID`).
    @inline(__always)
    func enqueueMetric(_ m: Metric, key: Int32) {
        var m = m
        m.keyID = UInt32(bitPattern: key)
        batchMetrics.append(m)
        batchBytes += Server.metricWeight
    }

    /// The metrics batched since the last item go into `batch` as one item.
    @inline(__always)
    private func sealMetrics() {
        guard !batchMetrics.isEmpty else { return }
        batch.append(.metrics(batchMetrics))
        batchMetrics.removeAll(keepingCapacity: true)
    }

    func protocolError(_ conn: Connection, code: ErrorCode, message: String, wire: WireError? = nil) {
        malformed += 1
        if case .unsupportedVersion? = wire { refused += 1 }
        let errorCode: ErrorCode =
            switch wire {
            case .unsupportedVersion?: .unsupportedVersion
            case .frameTooLarge?: .frameTooLarge
            default: code
            }
        log.limited(
            .warning, key: "bad-frame",
            "closing connection \(conn.id) (pid \(conn.peerPID), uid \(conn.peerUID)): \(message)")
        send(.error(ErrorReport(code: errorCode, message: message)), to: conn)
        closeConnection(conn, reason: nil)
    }

    // MARK: writing to clients

    func send(_ record: Record, to conn: Connection) {
        guard conn.state != .closed || record.kind == FrameKind.error.rawValue else { return }
        try? FrameEncoder().encode(record, into: &conn.out)
        flushOutput(conn)
    }

    func flushOutput(_ conn: Connection) {
        if conn.out.isEmpty, let ack = conn.pendingAck {
            try? FrameEncoder().encode(.ack(durableThrough: ack), into: &conn.out)
            conn.pendingAck = nil
        }
        while !conn.out.isEmpty {
            let n = conn.out.withUnsafeBytes { Glibc.send(conn.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n > 0 {
                conn.out.removeFirst(n)
                if conn.out.isEmpty, let ack = conn.pendingAck {
                    try? FrameEncoder().encode(.ack(durableThrough: ack), into: &conn.out)
                    conn.pendingAck = nil
                }
                continue
            }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { break }
            // The peer is gone; reading will see it.
            conn.out.removeAll()
            conn.pendingAck = nil
            break
        }
        if conn.out.count > 8 << 20, conn.state != .closed {
            conn.out.removeAll()  // closing must not try to flush this again
            closeConnection(conn, reason: "client does not read its replies")
            return
        }
        setPoll(conn, readable: mayRead(conn))
    }

    // MARK: batching to the writer

    /// Adds an item to the batch for the writer. Batches are handed over at frame boundaries
    /// (`decodeFrames`, the end of each event), never between a frame's records and the mark
    /// that follows them: a checkpoint must never cover records its frame numbers do not.
    func enqueue(_ item: WriterItem) {
        sealMetrics()
        batch.append(item)
        batchBytes += item.weight(frameBytes: frameBytes)
    }

    /// Keeps `partialFrameBytes` equal to the connections' buffers beyond their initial size.
    func account(_ conn: Connection) {
        let extra = conn.state == .closed ? 0 : max(0, conn.capacity - Connection.initialBufferBytes)
        partialFrameBytes += extra - conn.accountedBytes
        conn.accountedBytes = extra
    }

    func flushBatch() {
        sealMetrics()
        guard !batch.isEmpty else { return }
        let queued = writer.enqueue(batch, bytes: batchBytes)
        batch.removeAll(keepingCapacity: true)
        batchBytes = 0
        if queued > config.writerQueueBytes || copiesInFlight > Server.maxCopiesInFlight, !readingPaused, lifecycle == .running {
            pauseReading()
        }
    }

    private func pauseReading() {
        readingPaused = true
        backpressurePauses += 1
        log.limited(.info, key: "backpressure", "writer queue above \(config.writerQueueBytes) bytes: reading paused")
        for conn in connections.values { setPoll(conn, readable: mayRead(conn)) }
    }

    func resumeReadingIfDrained() {
        guard readingPaused, writer.queuedBytes <= config.writerQueueBytes / 2, copiesInFlight <= Server.maxCopiesInFlight / 2 else {
            return
        }
        readingPaused = false
        for conn in connections.values { setPoll(conn, readable: true) }
    }

    // MARK: closing

    func closeConnection(_ conn: Connection, reason: String?) {
        guard conn.state != .closed else { return }
        if let reason { log.limited(.info, key: "close-\(reason.prefix(12))", "connection \(conn.id): \(reason)") }
        let wasProducer = conn.state == .producer
        if !conn.out.isEmpty { flushOutput(conn) }
        conn.state = .closed
        account(conn)
        uv_poll_stop(conn.poll)
        uv_close(UnsafeMutableRawPointer(conn.poll).assumingMemoryBound(to: uv_handle_t.self), c_connectionClosed)
        connections.removeValue(forKey: conn.id)
        // A drain leaves runs resumable: their producers are alive and will reconnect.
        if wasProducer, lifecycle != .draining, let session = conn.session { producerLeft(conn, session) }
        for (id, waiter) in barriers {
            switch waiter {
            case .producer(let c, _, _, _) where c == conn.id: barriers.removeValue(forKey: id)
            case .control(let c, _, _, _) where c == conn.id: barriers.removeValue(forKey: id)
            default: break
            }
        }
        flushBatch()
    }

    func connectionClosed(_ conn: Connection) {
        close(conn.fd)
        conn.closePassedFDs()
    }

    // MARK: acknowledgements and barriers

    private func acknowledge(_ session: SessionID, _ seq: UInt64) {
        guard let s = sessions[session] else { return }
        s.durable = max(s.durable, seq)
        sessions[session] = s
        releaseHeldFlushes(session, all: false)
        if let id = s.connection, let conn = connections[id] {
            conn.pendingAck = s.durable
            flushOutput(conn)
        }
    }

    /// Sends the held FLUSH_DONEs of `session` that its durable number now covers (`all`: every
    /// one, its run being finished), with that number.
    private func releaseHeldFlushes(_ session: SessionID, all: Bool) {
        guard let held = heldFlushes[session] else { return }
        let durable = sessions[session]?.durable ?? 0
        let ready = held.filter { all || $0.through <= durable }
        let rest = held.filter { !(all || $0.through <= durable) }
        heldFlushes[session] = rest.isEmpty ? nil : rest
        for h in ready {
            guard let conn = connections[h.connection] else { continue }
            if conn.pendingBarriers > 0 { conn.pendingBarriers -= 1 }
            send(.flushDone(FlushDone(token: h.token, status: .ok, durableThrough: durable)), to: conn)
        }
    }

    /// Registers a barrier for `conn`; past max_pending_barriers, closes that connection instead
    /// (a client flooding FLUSH cannot grow logd) and returns false.
    @discardableResult
    func newBarrier(_ waiter: BarrierWaiter, on conn: Connection) -> Bool {
        guard conn.pendingBarriers < config.maxPendingBarriers else {
            protocolError(
                conn, code: .refused, message: "more than max_pending_barriers (\(config.maxPendingBarriers)) flushes pending on one connection")
            return false
        }
        conn.pendingBarriers += 1
        let id = nextBarrier
        nextBarrier += 1
        barriers[id] = waiter
        enqueue(.barrier(id))
        flushBatch()
        return true
    }

    private func completeBarrier(_ id: UInt64, error: String?) {
        guard let waiter = barriers.removeValue(forKey: id) else { return }
        if case .producer(let c, let token, let session, let through) = waiter, error == nil, finishingSessions.contains(session),
            connections[c] != nil, (sessions[session]?.durable ?? 0) < through
        {
            heldFlushes[session, default: []].append((c, token, through))
            return
        }
        barrierLeft(waiter)
        switch waiter {
        case .producer(let c, let token, let session, _):
            guard let conn = connections[c] else { return }
            let durable = sessions[session]?.durable ?? 0
            send(.flushDone(FlushDone(token: token, status: error == nil ? .ok : .failed, durableThrough: durable)), to: conn)
        case .control(let c, let requestID, _, let recordsAtRequest):
            guard let conn = connections[c] else { return }
            if let error {
                send(.controlReply(ControlReply(requestID: requestID, status: .failed, body: ["error": .string(error)])), to: conn)
            } else {
                let body: Value = ["records_written": .int(Int64(clamping: recordsAtRequest)), "durable": true]
                send(.controlReply(ControlReply(requestID: requestID, status: .ok, body: body)), to: conn)
            }
        }
    }

    private func barrierLeft(_ waiter: BarrierWaiter) {
        switch waiter {
        case .producer(let c, _, _, _), .control(let c, _, _, _):
            if let conn = connections[c], conn.pendingBarriers > 0 { conn.pendingBarriers -= 1 }
        }
    }

    // MARK: maintenance

    func tick() {
        let now = Posix.monotonicNanos()
        resumeReadingIfDrained()
        let elapsed = Double(now - rateSample.time) / 1e9
        if elapsed >= 1 {
            rate = Double(totalRecords - rateSample.records) / elapsed
            rateSample = (now, totalRecords)
        }
        for (id, waiter) in barriers {
            guard case .control(let c, let requestID, let deadline, _) = waiter, now >= deadline else { continue }
            barriers.removeValue(forKey: id)
            barrierLeft(waiter)
            if let conn = connections[c] {
                let body: Value = ["error": "flush did not complete within its timeout"]
                send(.controlReply(ControlReply(requestID: requestID, status: .timedOut, body: body)), to: conn)
            }
        }
        for run in runs.values {
            if let deadline = run.rankWaitDeadline, now >= deadline { endRunIfDone(run) }
            guard let deadline = run.graceDeadline, now >= deadline else { continue }
            run.graceDeadline = nil
            if !run.sessions.contains(where: { sessions[$0]?.connection != nil }) {
                log.log(.info, "run \(run.directory ?? run.runID): no producer came back; marking it crashed")
                for s in run.sessions where sessions[s]?.end == nil {
                    sessions[s]?.end = .vanished
                    enqueue(.producerEnded(run: run.index, session: s, .vanished))
                }
                endRunIfDone(run)
            }
        }
        flushBatch()
    }

    // MARK: shutdown

    func signalReceived(_ signum: Int32) {
        log.log(.info, "signal \(signum): draining")
        stop()
    }

    /// Begins a drain: stop accepting, read what clients already sent, write and fsync it,
    /// close files, remove the socket, stop the loop. Runs stay resumable.
    public func stop() {
        guard lifecycle == .running else { return }
        lifecycle = .draining
        SystemdNotify.send("STOPPING=1\nSTATUS=draining")
        if let poll = listenPoll {
            uv_poll_stop(poll)
            uv_close(UnsafeMutableRawPointer(poll).assumingMemoryBound(to: uv_handle_t.self), c_serverHandleClosed)
            listenPoll = nil
        }
        close(listenFD)
        if ownsSocketPath { unlink(config.socket) }
        for conn in connections.values { readAvailable(conn, budget: .max) }
        flushBatch()
        for conn in Array(connections.values) { closeConnection(conn, reason: nil) }
        writer.enqueue([.shutdown], bytes: 0)
    }

    private func finishStop() {
        for h in signals {
            uv_signal_stop(h)
            uv_close(UnsafeMutableRawPointer(h).assumingMemoryBound(to: uv_handle_t.self), c_serverHandleClosed)
        }
        signals.removeAll()
        uv_timer_stop(timer)
        uv_close(UnsafeMutableRawPointer(timer).assumingMemoryBound(to: uv_handle_t.self), c_serverHandleClosed)
        uv_close(UnsafeMutableRawPointer(door).assumingMemoryBound(to: uv_handle_t.self), c_serverHandleClosed)
    }
}
