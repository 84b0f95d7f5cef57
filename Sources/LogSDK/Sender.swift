#if canImport(Glibc)
    import Glibc
#endif
import Wire

/// Moves frames from the `FrameStore` to the daemon, on its own thread, so that the training
/// thread never waits on a socket. It connects (retrying with backoff while the daemon is
/// absent), sends HELLO with the oldest frame it still holds, resends everything not yet
/// acknowledged, sends with MSG_DONTWAIT | MSG_NOSIGNAL, and reads ACK / FLUSH_DONE.
///
/// Threading: `loop()` is the sender thread and owns the connection state; `connected`,
/// `wake()`, `requestFlush()`, `waitDropsSent()` and `stop()` are thread-safe (under `control`).
/// `start()`, `stop()` and `abandonAfterFork()` are called by the owning `Run` under its state lock.
final class Sender: @unchecked Sendable {
    enum Transport: Sendable {
        case daemon(socketPath: String)
        /// Frames are decoded into `sink` and acknowledged at once (users' tests).
        case memory(InMemorySink)
        /// Frames are discarded and acknowledged at once.
        case discard
    }

    private let store: FrameStore
    private let transport: Transport
    let session: SessionID
    private let control = SDKLock()
    private var stopping = false
    private var flushTokens: UInt64 = 0
    private var flushWanted: UInt64 = 0
    private var thread = pthread_t()
    private var started = false

    // Sender-thread state.
    private var fd: Int32 = -1
    /// Where sending stands: a chunk (by serial) and the offset of the next byte to send in it.
    private var cursor: (serial: UInt64, offset: Int) = (0, 0)
    /// Metric key definitions already sent on this connection.
    private var keysSent = 0
    /// When a send stopped inside a frame: the offset (in the cursor's chunk) where that frame
    /// ends. Nothing else may be sent before it is reached, or the stream would be corrupt.
    private var frameEnd: Int?
    private var incoming = StreamDecoder()
    private var backoffNanos: Int64 = 10_000_000
    private var nextConnectAttempt: Int64 = 0
    private var lastFlushSent: UInt64 = 0
    private var reportedDrops: UInt64 = 0
    /// Number of the first frame sent on this connection, and how many were sent.
    private var sentThrough: UInt64 = 0
    /// Whether a connection is up (under `control`: other threads read it through `connected`).
    private var isUp = false

    /// Whether the sender is connected to logd right now. Thread-safe.
    var connected: Bool {
        control.lock()
        defer { control.unlock() }
        return isUp
    }

    private func setConnected(_ up: Bool) {
        control.lock()
        isUp = up
        control.unlock()
    }

    init(store: FrameStore, transport: Transport, session: SessionID) {
        self.store = store
        self.transport = transport
        self.session = session
    }

    func start() {
        guard !started else { return }
        started = true
        let box = Unmanaged.passRetained(self)
        pthread_create(
            &thread, nil,
            { arg in
                let me = Unmanaged<Sender>.fromOpaque(arg!).takeRetainedValue()
                me.loop()
                return nil
            }, box.toOpaque())
    }

    /// The drop total last sent on a connection (under `control`).
    private var dropsSent: UInt64 = 0

    /// Waits until the daemon has been sent a drop total of at least `total`, or `deadline`.
    func waitDropsSent(_ total: UInt64, deadline: Int64) {
        control.lock()
        defer { control.unlock() }
        control.signal()
        while dropsSent < total, Clock.monotonic() < deadline {
            control.wait(until: min(deadline, Clock.monotonic() + 20_000_000))
        }
    }

    private var isStopping: Bool {
        control.lock()
        defer { control.unlock() }
        return stopping
    }

    func wake() {
        control.lock()
        control.signal()
        control.unlock()
    }

    /// Asks the sender to send FLUSH after everything logged so far.
    func requestFlush() {
        control.lock()
        flushTokens += 1
        flushWanted = flushTokens
        control.signal()
        control.unlock()
    }

    /// In a forked child: this sender's thread does not exist here; drop our copy of the socket.
    func abandonAfterFork() {
        if fd >= 0 { close(fd) }
        fd = -1
        started = false
    }

    func stop() {
        control.lock()
        stopping = true
        control.signal()
        control.unlock()
        if started { pthread_join(thread, nil) }
        started = false
    }

    // MARK: the sender thread

    private func loop() {
        while true {
            control.lock()
            if !stopping { control.wait(until: Clock.monotonic() + 5_000_000) }
            let stop = stopping
            let flush = flushWanted
            control.unlock()
            if stop {
                disconnect()
                return
            }
            store.prepareSpare()
            switch transport {
            case .daemon(let path):
                pump(path: path, flush: flush)
            case .memory(let sink):
                drainLocally(into: sink)
            case .discard:
                drainLocally(into: nil)
            }
        }
    }

    /// Finds the cursor's chunk in `snap` by serial; a released chunk was fully acknowledged
    /// (so fully sent): continue at the first remaining chunk.
    private func resolveCursor(_ snap: FrameStore.Snapshot) -> (index: Int, offset: Int) {
        if let i = snap.chunks.firstIndex(where: { $0.serial == cursor.serial }) { return (i, cursor.offset) }
        return (0, 0)
    }

    private func drainLocally(into sink: InMemorySink?) {
        let snap = store.snapshot(sealing: true)
        guard !snap.chunks.isEmpty else { return }
        var (i, offset) = resolveCursor(snap)
        var through: UInt64 = 0
        while i < snap.chunks.count {
            let c = snap.chunks[i], used = snap.used[i]
            if used > offset {
                sink?.feed(UnsafeRawBufferPointer(start: c.base + offset, count: used - offset))
            }
            through = c.firstSeq + UInt64(Sender.frameCount(c, upTo: used)) - 1
            cursor = (c.serial, used)
            offset = 0
            i += 1
        }
        // Everything before the last chunk is consumed; treat the last as consumed up to `used`.
        cursor.serial = snap.chunks.last!.serial
        if through > 0 { store.acknowledge(through: through, sentBefore: cursor.serial) }
    }

    static func frameCount(_ c: FrameStore.Chunk, upTo used: Int) -> Int {
        var n = 0, off = 0
        while off + 4 <= used {
            let len = Int(UInt32(littleEndian: c.base.loadUnaligned(fromByteOffset: off, as: UInt32.self)))
            off += 4 + len
            n += 1
        }
        return n
    }

    private func pump(path: String, flush: UInt64) {
        if fd < 0 {
            let now = Clock.monotonic()
            guard now >= nextConnectAttempt else { return }
            if !connect(path) {
                nextConnectAttempt = now + backoffNanos
                backoffNanos = min(backoffNanos * 2, 1_000_000_000)
                return
            }
            backoffNanos = 10_000_000
        }
        readReplies()
        guard fd >= 0 else { return }
        guard finishPartialFrame() else { return }
        sendKeyDefinitions()
        reportDrops()
        sendPending()
        guard fd >= 0, frameEnd == nil else { return }
        if flush > lastFlushSent, cursorAtEnd() {
            var out: [UInt8] = []
            try? FrameEncoder().encode(.flush(token: flush), into: &out)
            if sendAll(out) { lastFlushSent = flush }
        }
    }

    /// Tells the daemon the running total of dropped records (unnumbered: it needs no room
    /// in the full buffer, and a repeat does no harm).
    private func reportDrops() {
        let c = store.counters
        if c.dropped > reportedDrops {
            var out: [UInt8] = []
            try? FrameEncoder().encode(.drops(total: c.dropped), into: &out)
            if sendAll(out) {
                reportedDrops = c.dropped
                control.lock()
                dropsSent = c.dropped
                control.broadcast()
                control.unlock()
            }
        }
    }

    private func cursorAtEnd() -> Bool {
        let snap = store.snapshot()
        guard !snap.chunks.isEmpty else { return true }
        let (i, offset) = resolveCursor(snap)
        return i == snap.chunks.count - 1 && offset >= snap.used[i]
    }

    private func connect(_ path: String) -> Bool {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return false }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(s)
            return false
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(s)
            return false
        }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        fd = s
        incoming = StreamDecoder()
        let first = store.oldestHeld
        let hello = Hello(
            role: .producer, pid: UInt32(bitPattern: getpid()), session: session, firstSeq: first,
            clientName: LogSDK.clientName, clientVersion: LogSDK.version)
        var out: [UInt8] = []
        try? FrameEncoder().encode(.hello(hello), into: &out)
        keysSent = 0
        lastFlushSent = 0
        reportedDrops = 0
        frameEnd = nil
        guard sendAll(out) else { return false }
        let snap = store.snapshot()
        cursor = (snap.chunks.first?.serial ?? 0, 0)
        // Frame 1 is RUN_START: the daemon must see it before METRIC_KEY definitions.
        if first == 1, let c = snap.chunks.first, snap.used[0] >= 4 {
            let len = 4 + Int(UInt32(littleEndian: c.base.loadUnaligned(as: UInt32.self)))
            guard sendRaw(c.base, len, passing: c.fd) else { return false }
            cursor = (c.serial, len)
        }
        setConnected(true)
        return true
    }

    private func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        setConnected(false)
    }

    /// If the last send stopped inside a frame, sends the rest of that frame first.
    /// Returns whether the stream is at a frame boundary.
    private func finishPartialFrame() -> Bool {
        guard let end = frameEnd else { return true }
        let snap = store.snapshot()
        guard let i = snap.chunks.firstIndex(where: { $0.serial == cursor.serial }) else {
            frameEnd = nil  // released: the daemon has it all
            return true
        }
        let c = snap.chunks[i]
        while cursor.offset < end {
            let n = send(c.base + cursor.offset, end - cursor.offset, passing: -1)
            if n < 0 { return false }
            cursor.offset += n
        }
        frameEnd = nil
        return true
    }

    /// Sends key definitions not yet sent on this connection (at a frame boundary). Every key
    /// a frame refers to was interned before that frame was stored, so sending the defined
    /// keys before the data snapshot that follows is enough.
    private func sendKeyDefinitions() {
        let snap = store.snapshot()
        guard snap.keyCount > keysSent else { return }
        var out: [UInt8] = []
        for k in store.keyDefinitions(from: keysSent) { try? FrameEncoder().encode(.metricKey(k), into: &out) }
        if sendAll(out) { keysSent = snap.keyCount }
    }

    /// The end offset of the frame that contains byte `offset + sent - 1`, walking frames
    /// from `offset` (a frame boundary).
    private static func endOfFrame(in c: FrameStore.Chunk, from offset: Int, sent: Int) -> Int {
        var p = offset
        while p < offset + sent {
            p += 4 + Int(UInt32(littleEndian: c.base.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
        }
        return p
    }

    /// Sends every held frame from the cursor on, until the socket would block. The open
    /// METRIC_BATCH is sealed first: the metrics logged since the last look go out as one frame.
    private func sendPending() {
        let snap = store.snapshot(sealing: true)
        guard fd >= 0, !snap.chunks.isEmpty else { return }
        var (i, offset) = resolveCursor(snap)
        while i < snap.chunks.count {
            let c = snap.chunks[i]
            let used = snap.used[i]
            cursor = (c.serial, offset)
            if offset < used {
                let n = send(c.base + offset, used - offset, passing: offset == 0 ? c.fd : -1)
                if n < 0 { return }  // would block, or the connection failed
                cursor.offset = offset + n
                if cursor.offset < used {
                    let end = Sender.endOfFrame(in: c, from: offset, sent: n)
                    frameEnd = end == cursor.offset ? nil : end
                    return
                }
            }
            if i == snap.chunks.count - 1 { return }  // the active chunk: more may come
            i += 1
            offset = 0
            cursor = (snap.chunks[i].serial, 0)
        }
    }

    private func readReplies() {
        var buf = [UInt8](repeating: 0, count: 4096)
        while fd >= 0 {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                incoming.feed(buf[0..<n])
                continue
            }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                disconnect()
                return
            }
            break
        }
        while let r = try? incoming.next() {
            switch r {
            case .welcome(let w): store.acknowledge(through: w.durableThrough, sentBefore: cursor.serial)
            case .ack(let n): store.acknowledge(through: n, sentBefore: cursor.serial)
            case .flushDone(let f): store.acknowledge(through: f.durableThrough, sentBefore: cursor.serial)
            case .error:
                disconnect()
                return
            default: break
            }
        }
    }

    /// Sends bytes; returns how many went out, or -1 when it would block or the peer is gone.
    private func send(_ p: UnsafeMutableRawPointer, _ n: Int, passing passFD: Int32) -> Int {
        while true {
            let sent: Int
            if passFD >= 0 {
                sent = sendWithDescriptor(p, n, passFD)
            } else {
                sent = Glibc.send(fd, p, n, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if sent >= 0 { return sent }
            if errno == EINTR { continue }
            if errno != EAGAIN && errno != EWOULDBLOCK { disconnect() }
            return -1
        }
    }

    private func sendWithDescriptor(_ p: UnsafeMutableRawPointer, _ n: Int, _ passFD: Int32) -> Int {
        var iov = iovec(iov_base: p, iov_len: n)
        let space = 24  // CMSG_SPACE(sizeof(int)) on 64-bit Linux
        var control = [UInt8](repeating: 0, count: space)
        return control.withUnsafeMutableBytes { cbuf -> Int in
            // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the fd.
            cbuf.storeBytes(of: 20, toByteOffset: 0, as: Int.self)  // CMSG_LEN(sizeof(int))
            cbuf.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
            cbuf.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
            cbuf.storeBytes(of: passFD, toByteOffset: 16, as: Int32.self)
            return withUnsafeMutablePointer(to: &iov) { iovp in
                var msg = msghdr()
                msg.msg_iov = iovp
                msg.msg_iovlen = 1
                msg.msg_control = cbuf.baseAddress
                msg.msg_controllen = space
                return sendmsg(fd, &msg, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
        }
    }

    /// Sends all of `p[0..<n]`, waiting for the socket if needed (the sender thread may wait,
    /// at most 2 s and never past `stop()`); on failure the connection is dropped, so a frame
    /// is never left half-sent in the stream.
    private func sendRaw(_ p: UnsafeMutableRawPointer, _ n: Int, passing passFD: Int32) -> Bool {
        var off = 0
        var first = true
        let deadline = Clock.monotonic() + 2_000_000_000
        while off < n, fd >= 0 {
            if Clock.monotonic() > deadline || isStopping {
                disconnect()
                return false
            }
            let sent = send(p + off, n - off, passing: first ? passFD : -1)
            if sent > 0 {
                off += sent
                first = false
                continue
            }
            if fd < 0 { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pfd, 1, 100)
        }
        return off == n
    }

    private func sendAll(_ bytes: [UInt8]) -> Bool {
        var copy = bytes
        return copy.withUnsafeMutableBytes { sendRaw($0.baseAddress!, $0.count, passing: -1) }
    }
}
