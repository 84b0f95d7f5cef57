#if canImport(Glibc)
    import Glibc
#endif
import CLibUV
import Wire
import LogdSystem

/// One client connection. Loop-confined: every property is read and written on the loop thread.
///
/// The read buffer is raw memory owned here, bounded by the largest frame the daemon accepts;
/// frames are decoded in place and a partial frame stays put until the rest arrives.
final class Connection {
    enum State {
        /// Connected; the first frame must be HELLO.
        case awaitingHello
        case producer
        case control
        /// Closing: no more reads; the poll handle's close callback finishes it.
        case closed
    }

    static let initialBufferBytes = 16 << 10

    let id: Int
    let fd: Int32
    /// Allocated once, freed in the close callback (never a stored uv struct: exclusivity).
    let poll: UnsafeMutablePointer<uv_poll_t>
    /// From SO_PEERCRED.
    let peerPID: Int32
    let peerUID: UInt32
    var state = State.awaitingHello
    var hello: Hello?
    var decoder: FrameDecoder
    /// Number the next data record on this connection takes.
    var nextSeq: UInt64 = 1
    var session: SessionID?
    var rank: Int32 = 0
    /// Connection key id → daemon-wide key index: ids below `denseKeyIDs`, or below twice the
    /// keys defined (SDKs number their keys 0, 1, 2, …), in an array, the rest in a dictionary.
    /// So the array costs at most 8 bytes per defined key beyond the first 16 KiB, and the keys
    /// are bounded per run and daemon-wide. Forgotten when the session starts another run (key
    /// indices belong to a run).
    private(set) var denseKeys: [Int32] = []
    private var sparseKeys: [UInt32: Int32] = [:]
    private(set) var definedKeys = 0
    static let denseKeyIDs: UInt32 = 4096
    static let undefinedKey = Int32.min
    /// The session this producer connection owns (the same object as `Server.sessions[session]`).
    var sessionState: Server.SessionState?
    /// The run of `sessionState` as last looked up, valid while `Server.runsEpoch` is `runEpoch`.
    var cachedRun: Server.RunState?
    var cachedRunIndex: Int32 = -1
    var runEpoch: UInt64 = .max
    /// FLUSH barriers of this connection not yet answered (bounded by max_pending_barriers).
    var pendingBarriers = 0
    /// uv_poll_init failed: the server closes the descriptor at once and frees the handle
    /// without uv_close (it was never initialized).
    var pollInitFailed = false
    /// This connection's share of `Server.partialFrameBytes` (buffer beyond the initial size).
    var accountedBytes = 0
    /// This connection's producer sent RUN_END for its current run.
    var sentRunEnd = false
    /// A frame number received here that still has to be reported to the writer.
    var unmarkedSeq = false
    /// Descriptors received with SCM_RIGHTS and not yet paired with a copy-mode ARTIFACT or
    /// MODEL_VERSION frame, oldest first (bounded by `maxPassedFDs`; closed with the connection).
    var passedFDs: [Int32] = []
    static let maxPassedFDs = 64

    // Counters for status.
    var records: UInt64 = 0
    var bytesIn: UInt64 = 0

    // Read buffer [start, end) within capacity.
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    var start = 0
    var end = 0

    // Output: frames waiting for the socket, and an acknowledgement folded in last.
    var out: [UInt8] = []
    var pendingAck: UInt64?
    /// Events the poll handle is started with (UV_READABLE / UV_WRITABLE).
    var pollEvents: Int32 = 0

    init(id: Int, fd: Int32, loop: UnsafeMutablePointer<uv_loop_t>, pid: Int32, uid: UInt32, limits: WireLimits) {
        self.id = id
        self.fd = fd
        peerPID = pid
        peerUID = uid
        decoder = FrameDecoder(limits: limits)
        poll = .allocate(capacity: 1)
        // A failure (EBADF, ENOMEM) leaves the handle uninitialized: see `pollInitFailed`.
        pollInitFailed = uv_poll_init(loop, poll, fd) < 0
        capacity = Connection.initialBufferBytes
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        closePassedFDs()
    }

    func closePassedFDs() {
        for fd in passedFDs { close(fd) }
        passedFDs.removeAll()
    }

    /// The oldest passed descriptor not yet paired with a frame, now owned by the caller.
    func nextPassedFD() -> PassedFD? {
        guard !passedFDs.isEmpty else { return nil }
        return PassedFD(passedFDs.removeFirst())
    }

    var bufferedBytes: Int { end - start }

    /// The daemon-wide key index of key id `id`, if defined on this connection.
    @inline(__always)
    func keyIndex(_ id: UInt32) -> Int32? {
        if id < UInt32(truncatingIfNeeded: denseKeys.count) {
            let v = denseKeys[Int(id)]
            if v != Connection.undefinedKey { return v }
        }
        // An id the array did not cover when it was defined stays in the dictionary.
        return sparseKeys.isEmpty ? nil : sparseKeys[id]
    }

    func setKey(_ id: UInt32, _ index: Int32) {
        if keyIndex(id) == nil { definedKeys += 1 }
        if id < Connection.denseKeyIDs || UInt64(id) < 2 * UInt64(definedKeys) {
            sparseKeys[id] = nil
            if Int(id) >= denseKeys.count { denseKeys += repeatElement(Connection.undefinedKey, count: Int(id) + 1 - denseKeys.count) }
            denseKeys[Int(id)] = index
        } else {
            sparseKeys[id] = index
        }
    }

    func forgetKeys() {
        denseKeys.removeAll()
        sparseKeys.removeAll()
        definedKeys = 0
    }

    /// Makes room for at least `needed` bytes of one frame at the buffer's start; bounded by
    /// the frame limit checked by the decoder before this is called.
    func reserve(frameBytes needed: Int) {
        if start > 0 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            end -= start
            start = 0
        }
        if needed > capacity {
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: needed, alignment: 16)
            bigger.copyMemory(from: buffer, byteCount: end)
            buffer.deallocate()
            buffer = bigger
            capacity = needed
        }
    }

    /// After a big frame, go back to a small buffer so idle connections stay cheap.
    func shrinkIfIdle() {
        guard start == end, capacity > 4 * Connection.initialBufferBytes else { return }
        buffer.deallocate()
        capacity = Connection.initialBufferBytes
        buffer = .allocate(byteCount: capacity, alignment: 16)
        start = 0
        end = 0
    }
}
