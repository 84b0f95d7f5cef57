#if canImport(Glibc)
    import Glibc
#endif
import Wire

/// The SDK's bounded buffer of numbered frames, kept until the daemon acknowledges them.
///
/// Frames live in chunks of raw memory. The hot path stores a 28-byte entry into the open
/// METRIC_BATCH frame of the active chunk under `lock` — no allocation, no syscall. A batch is
/// one numbered frame: it gets its number when it opens, and its header (length, count) when it
/// is sealed — by the sender before it sends (`snapshot(sealing: true)`), by any other frame
/// appended after it, by `flushTarget()`, or when it is full (`batchMax` entries, or the end of
/// the chunk). Only sealed bytes are ever handed to the sender, and they never change, so a
/// resend after a reconnect is byte for byte the same frame under the same number.
///
/// Full chunks stay in order until every frame in them is acknowledged, then return to a pool.
/// When `capacityBytes` is used up the overflow policy is drop-newest: the record is not stored
/// and `dropped` counts it. Counters are in records (a batch of n metrics is n records);
/// `Chunk.recordEnds` turns an acknowledged frame number into acknowledged records.
///
/// Thread-safe: every mutable field is protected by `lock` (the hot path, the sender thread).
final class FrameStore: @unchecked Sendable {
    final class Chunk {
        let base: UnsafeMutableRawPointer
        let capacity: Int
        /// Bytes written (appends only; bytes below `used` never change).
        var used = 0
        /// Number of the first frame in this chunk.
        var firstSeq: UInt64 = 0
        var frames = 0
        /// An open file descriptor to pass (SCM_RIGHTS) with this chunk's first byte.
        var fd: Int32 = -1
        /// Unique per use of this chunk (pooled chunks get a new one), so the sender can find
        /// its place again after acknowledged chunks were released.
        var serial: UInt64 = 0
        /// `recordEnds[i]`: records logged through frame `firstSeq + i` (sealed frames only).
        var recordEnds: [UInt64] = []

        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(byteCount: capacity, alignment: 16)
        }

        deinit {
            base.deallocate()
            if fd >= 0 { close(fd) }
        }

        var lastSeq: UInt64 { firstSeq + UInt64(frames) - 1 }
    }

    static let chunkBytes = 64 << 10
    /// Entries per METRIC_BATCH (146): the frame fits the smallest `max_frame_bytes` a daemon
    /// may be configured with (4096), so every held batch can be resent to any logd.
    static let batchMax = (4096 - 5) / Metric.bodyBytes
    /// u32 length, u8 kind, u32 count.
    static let batchHeaderBytes = 9

    let lock = SDKLock()
    let capacityBytes: Int
    /// Chunks in frame order; the last is the active one.
    private(set) var chunks: [Chunk] = []
    private var pool: [Chunk] = []
    private var allocatedBytes = 0
    /// Number the next frame gets.
    private(set) var nextSeq: UInt64 = 1
    /// Highest frame number the daemon has made durable.
    private(set) var ackedSeq: UInt64 = 0
    private(set) var logged: UInt64 = 0
    private(set) var dropped: UInt64 = 0
    // The active chunk as plain scalars, so the hot path touches no object (no ARC traffic).
    // Authoritative while a chunk is active; `syncActive()` writes them back to the chunk.
    private var activeBase: UnsafeMutableRawPointer?
    private var activeUsed = 0
    private var activeCapacity = 0
    private var activeFrames = 0
    /// Offset of the open batch's header in the active chunk, or -1.
    private var batchStart = -1
    /// An entry fits in the open batch while `activeUsed + 28 <= batchLimit`; 0 when none is open.
    private var batchLimit = 0
    /// Records through the last acknowledged frame.
    private var ackedRecords: UInt64 = 0
    /// Interned metric keys in id order: resent after every (re)connect.
    private(set) var keys: [MetricKey] = []
    private let encoder = FrameEncoder()
    private var nextSerial: UInt64 = 1

    init(capacityBytes: Int) {
        self.capacityBytes = max(capacityBytes, 2 * FrameStore.chunkBytes)
    }

    // MARK: hot path (lock taken by the caller via `appendMetric`)

    /// Stores one metric as an entry of the open METRIC_BATCH (opening one when needed). Lock
    /// held inside; returns false when the record was dropped.
    @inline(__always)
    func appendMetric(keyID: UInt32, step: Int64, timestamp: Int64, value: Double) -> Bool {
        lock.lock()
        if _slowPath(activeUsed &+ Metric.bodyBytes > batchLimit) {
            guard openBatch() else {
                dropped &+= 1
                lock.unlock()
                return false
            }
        }
        let p = activeBase.unsafelyUnwrapped + activeUsed
        p.storeBytes(of: keyID.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: step.littleEndian, toByteOffset: 4, as: Int64.self)
        p.storeBytes(of: timestamp.littleEndian, toByteOffset: 12, as: Int64.self)
        p.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 20, as: UInt64.self)
        activeUsed &+= Metric.bodyBytes
        logged &+= 1
        lock.unlock()
        return true
    }

    /// With `lock` held: seals the open batch (if full) and opens a new one, numbered now, in
    /// the active chunk or a new one. False when the capacity has no room.
    private func openBatch() -> Bool {
        sealBatch()
        let need = FrameStore.batchHeaderBytes + Metric.bodyBytes
        if activeBase == nil || activeCapacity - activeUsed < need {
            guard newChunk(minimum: FrameStore.batchHeaderBytes + FrameStore.batchMax * Metric.bodyBytes) != nil else {
                return false
            }
        }
        batchStart = activeUsed
        activeUsed += FrameStore.batchHeaderBytes
        activeFrames += 1
        nextSeq += 1
        batchLimit = min(activeCapacity, activeUsed + FrameStore.batchMax * Metric.bodyBytes)
        return true
    }

    /// With `lock` held: writes the open batch's header (its entries are complete) and closes
    /// it; the next metric opens another.
    private func sealBatch() {
        guard batchStart >= 0, let base = activeBase, let c = chunks.last else { return }
        let count = (activeUsed - batchStart - FrameStore.batchHeaderBytes) / Metric.bodyBytes
        let p = base + batchStart
        p.storeBytes(of: UInt32(5 + count * Metric.bodyBytes).littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: FrameKind.metricBatch.rawValue, toByteOffset: 4, as: UInt8.self)
        p.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 5, as: UInt32.self)
        c.recordEnds.append(logged)
        batchStart = -1
        batchLimit = 0
    }

    /// With `lock` held: writes the active chunk's counters back to its object.
    private func syncActive() {
        guard let c = chunks.last, activeBase != nil else { return }
        c.used = activeUsed
        c.frames = activeFrames
    }

    /// With `lock` held: makes `c` the active chunk (or none when nil / it carries a descriptor).
    /// A batch still open is sealed first: it belongs to the chunk that stops being active.
    private func activate(_ c: Chunk?) {
        sealBatch()
        guard let c, c.fd < 0 else {
            activeBase = nil
            activeUsed = 0
            activeCapacity = 0
            activeFrames = 0
            return
        }
        activeBase = c.base
        activeUsed = c.used
        activeCapacity = c.capacity
        activeFrames = c.frames
    }

    /// With `lock` held: a fresh active chunk for at least `minimum` bytes, or nil at capacity.
    private func newChunk(minimum: Int) -> Chunk? {
        sealBatch()
        syncActive()
        let c = makeChunk(minimum: minimum)
        activate(c)
        return c
    }

    /// Called by the sender thread: keeps one chunk ready in the pool, its pages touched, so
    /// the hot path's rollover neither allocates nor page-faults.
    /// The budget is only charged once the spare is in the pool, so the hot path never drops
    /// a record because of a spare still being prepared.
    func prepareSpare() {
        lock.lock()
        let need = pool.isEmpty && allocatedBytes + FrameStore.chunkBytes <= capacityBytes
        lock.unlock()
        guard need else { return }
        let c = Chunk(capacity: FrameStore.chunkBytes)
        memset(c.base, 0, c.capacity)
        lock.lock()
        if pool.isEmpty, allocatedBytes + FrameStore.chunkBytes <= capacityBytes {
            allocatedBytes += FrameStore.chunkBytes
            pool.append(c)
        }
        lock.unlock()
    }

    private func makeChunk(minimum: Int) -> Chunk? {
        let size = max(FrameStore.chunkBytes, minimum)
        let c: Chunk
        if size == FrameStore.chunkBytes, let pooled = pool.popLast() {
            c = pooled
        } else {
            guard allocatedBytes + size <= capacityBytes else { return nil }
            c = Chunk(capacity: size)
            allocatedBytes += size
        }
        c.used = 0
        c.frames = 0
        c.recordEnds.removeAll(keepingCapacity: true)
        c.firstSeq = nextSeq
        c.fd = -1
        c.serial = nextSerial
        nextSerial += 1
        chunks.append(c)
        return c
    }

    // MARK: everything else (not the hot path)

    /// Encodes and stores a numbered record (optionally with a descriptor to pass). Returns
    /// false, counting a drop, when there is no room or the record cannot be encoded.
    /// `countingDrop` false: a record refused for lack of room is not counted (the caller tries
    /// again, as `finish` does with RUN_END).
    @discardableResult
    func append(_ record: Record, passing fd: Int32 = -1, countingDrop: Bool = true) -> Bool {
        var bytes: [UInt8] = []
        do { try encoder.encode(record, into: &bytes) } catch {
            lock.lock()
            dropped &+= 1
            lock.unlock()
            if fd >= 0 { close(fd) }
            return false
        }
        lock.lock()
        defer { lock.unlock() }
        sealBatch()  // the metrics before this record stay before it
        syncActive()
        var chunk = chunks.last
        let needsOwnChunk = fd >= 0
        if needsOwnChunk || chunk == nil || chunk!.fd >= 0 || chunk!.capacity - chunk!.used < bytes.count {
            chunk = newChunk(minimum: bytes.count)
        }
        guard let c = chunk else {
            if countingDrop { dropped &+= 1 }
            if fd >= 0 { close(fd) }
            return false
        }
        bytes.withUnsafeBytes { c.base.advanced(by: c.used).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        c.used += bytes.count
        c.frames += 1
        if needsOwnChunk {
            c.fd = fd
            // Later frames go to a new chunk, so the descriptor travels with this frame alone.
        }
        activate(c)
        nextSeq += 1
        logged += 1
        c.recordEnds.append(logged)
        return true
    }

    /// Interns a metric key; returns its id (the same id for the same triple).
    func intern(key: String, context: String, source: String) -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        if let i = keys.firstIndex(where: { $0.key == key && $0.context == context && $0.source == source }) {
            return UInt32(i)
        }
        keys.append(MetricKey(id: UInt32(keys.count), key: key, context: context, source: source))
        return UInt32(keys.count - 1)
    }

    /// What the sender needs: the chunks and, for each, how many bytes are sealed frames.
    struct Snapshot {
        var chunks: [Chunk]
        var used: [Int]
        var keyCount: Int
        var nextSeq: UInt64
    }

    /// `sealing`: the sender is about to send, so the open batch is sealed and included;
    /// otherwise `used` stops before it (its header is not written yet).
    func snapshot(sealing: Bool = false) -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        if sealing { sealBatch() }
        syncActive()
        var used = chunks.map(\.used)
        if batchStart >= 0, !used.isEmpty { used[used.count - 1] = batchStart }
        return Snapshot(chunks: chunks, used: used, keyCount: keys.count, nextSeq: nextSeq)
    }

    /// Seals the open batch and returns the number of the last frame logged so far: what a
    /// flush waits for.
    func flushTarget() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        sealBatch()
        return nextSeq - 1
    }

    func keyDefinitions(from: Int) -> [MetricKey] {
        lock.lock()
        defer { lock.unlock() }
        return Array(keys[from...])
    }

    /// The daemon made frames through `seq` durable: release chunks that are fully acknowledged
    /// and already sent on this connection (serial below `sentBefore`). Chunks ahead of the
    /// sender's cursor stay, so the frame numbering a HELLO announced is never broken.
    func acknowledge(through seq: UInt64, sentBefore: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        syncActive()
        if seq > ackedSeq {
            ackedSeq = min(seq, nextSeq - 1)
            for c in chunks where c.frames > 0 && c.firstSeq <= ackedSeq {
                let i = Int(min(ackedSeq, c.lastSeq) - c.firstSeq)
                if i < c.recordEnds.count { ackedRecords = c.recordEnds[i] }
            }
        }
        while let first = chunks.first, first.serial < sentBefore, first.frames > 0, first.lastSeq <= ackedSeq {
            chunks.removeFirst()
            if first.fd >= 0 {
                close(first.fd)
                first.fd = -1
            }
            if first.capacity == FrameStore.chunkBytes {
                pool.append(first)
            } else {
                allocatedBytes -= first.capacity
            }
        }
        if chunks.isEmpty { activate(nil) }
        lock.broadcast()
    }

    /// Oldest frame number still held (the HELLO's first_seq after a reconnect).
    var oldestHeld: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        syncActive()
        return chunks.first(where: { $0.frames > 0 }).map(\.firstSeq) ?? nextSeq
    }

    struct Counters {
        /// Records stored (a batch's entries each count).
        var logged: UInt64
        /// Records in acknowledged frames.
        var acked: UInt64
        var dropped: UInt64
        var nextSeq: UInt64
    }

    var counters: Counters {
        lock.lock()
        defer { lock.unlock() }
        return Counters(logged: logged, acked: ackedRecords, dropped: dropped, nextSeq: nextSeq)
    }

    /// Waits until frames through `seq` are acknowledged or `deadline` (monotonic ns) passes.
    func waitAcked(_ seq: UInt64, deadline: Int64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        while ackedSeq < seq {
            if Clock.monotonic() >= deadline { return false }
            lock.wait(until: min(deadline, Clock.monotonic() + 50_000_000))
        }
        return true
    }

    /// After fork(): the child drops its parent's frames and starts numbering afresh.
    func resetAfterFork() {
        for c in chunks where c.fd >= 0 {
            close(c.fd)
            c.fd = -1
        }
        chunks.removeAll()
        pool.removeAll()
        batchStart = -1
        batchLimit = 0
        activate(nil)
        allocatedBytes = 0
        nextSeq = 1
        ackedSeq = 0
        ackedRecords = 0
        logged = 0
        dropped = 0
    }
}
