/// Encodes records as frames, appending to a caller-owned byte array.
///
/// Each `encode` checks the limits the decoder will check, so a client learns of an oversized
/// field at its own call site. The metric hot path does not use this type: see
/// `Metric.store(frameAt:)`, which writes a fixed 33-byte frame into raw memory.
public struct FrameEncoder: Sendable {
    public var limits: WireLimits

    public init(limits: WireLimits = .default) { self.limits = limits }

    /// Appends `record` as one frame to `out`. On error `out` is left as it was.
    public func encode(_ record: Record, into out: inout [UInt8]) throws(WireError) {
        let start = out.count
        out.append(contentsOf: [0, 0, 0, 0, record.kind])
        var w = BodyWriter(out: out, limits: limits)
        out = []
        defer { out = w.out }
        do {
            try w.body(of: record)
        } catch {
            w.out.removeSubrange(start...)
            throw error
        }
        let length = w.out.count - start - WireProtocol.lengthPrefixBytes
        guard length <= limits.maxFrameBytes else {
            w.out.removeSubrange(start...)
            throw .frameTooLarge(length: UInt32(clamping: length), limit: limits.maxFrameBytes)
        }
        w.out.withUnsafeMutableBytes {
            $0.storeBytes(of: UInt32(length).littleEndian, toByteOffset: start, as: UInt32.self)
        }
    }

    /// The frame bytes of `record`, a convenience for tests and tools.
    public func frame(_ record: Record) throws(WireError) -> [UInt8] {
        var out: [UInt8] = []
        try encode(record, into: &out)
        return out
    }
}

extension Metric {
    /// Stores this metric as one complete METRIC frame (`Metric.frameBytes` = 33 bytes) at `p`.
    /// No allocation, no bounds check: the caller owns at least 33 writable bytes at `p`.
    @inlinable
    public func store(frameAt p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt32(1 + Metric.bodyBytes).littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: FrameKind.metric.rawValue, toByteOffset: 4, as: UInt8.self)
        p.storeBytes(of: keyID.littleEndian, toByteOffset: 5, as: UInt32.self)
        p.storeBytes(of: step.littleEndian, toByteOffset: 9, as: Int64.self)
        p.storeBytes(of: timestamp.littleEndian, toByteOffset: 17, as: Int64.self)
        p.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 25, as: UInt64.self)
    }
}

/// Appends little-endian fields to a frame body.
struct BodyWriter {
    var out: [UInt8]
    let limits: WireLimits

    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }

    mutating func string(_ s: String, field: String, limit: Int) throws(WireError) {
        let n = s.utf8.count
        guard n <= limit else { throw .stringTooLong(field: field, length: UInt32(clamping: n), limit: limit) }
        u32(UInt32(n))
        out.append(contentsOf: s.utf8)
    }

    mutating func name(_ s: String, _ field: String) throws(WireError) {
        try string(s, field: field, limit: limits.maxNameBytes)
    }

    mutating func text(_ s: String, _ field: String) throws(WireError) {
        try string(s, field: field, limit: limits.maxTextBytes)
    }

    mutating func count(_ n: Int, _ field: String) throws(WireError) {
        guard n <= limits.maxCollectionCount else {
            throw .collectionTooLarge(field: field, count: UInt32(clamping: n), limit: limits.maxCollectionCount)
        }
        u32(UInt32(n))
    }

    mutating func strings(_ list: [String], _ field: String, text: Bool) throws(WireError) {
        try count(list.count, field)
        for s in list {
            if text { try self.text(s, field) } else { try name(s, field) }
        }
    }

    mutating func session(_ s: SessionID) {
        withUnsafeBytes(of: s.bytes.0.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: s.bytes.1.bigEndian) { out.append(contentsOf: $0) }
    }

    mutating func digest(_ d: Digest256) {
        for w in [d.words.0, d.words.1, d.words.2, d.words.3] {
            withUnsafeBytes(of: w.bigEndian) { out.append(contentsOf: $0) }
        }
    }

    mutating func value(_ v: Value, depth: Int = 1) throws(WireError) {
        guard depth <= limits.maxDepth else { throw .nestingTooDeep(limit: limits.maxDepth) }
        switch v {
        case .null: u8(Value.Tag.null.rawValue)
        case .bool(let b): u8(b ? Value.Tag.true.rawValue : Value.Tag.false.rawValue)
        case .int(let i):
            u8(Value.Tag.int.rawValue)
            i64(i)
        case .double(let d):
            u8(Value.Tag.double.rawValue)
            f64(d)
        case .string(let s):
            u8(Value.Tag.string.rawValue)
            try text(s, "value.string")
        case .list(let items):
            u8(Value.Tag.list.rawValue)
            try count(items.count, "value.list")
            for item in items { try value(item, depth: depth + 1) }
        case .map(let entries):
            u8(Value.Tag.map.rawValue)
            try count(entries.count, "value.map")
            for (key, item) in entries {
                try text(key, "value.key")
                try value(item, depth: depth + 1)
            }
        }
    }

    mutating func metricBody(_ m: Metric) {
        u32(m.keyID)
        i64(m.step)
        i64(m.timestamp)
        f64(m.value)
    }

    mutating func body(of record: Record) throws(WireError) {
        switch record {
        case .hello(let h):
            try helloBody(h)
        case .welcome(let w):
            try welcomeBody(w)
        case .ack(let n):
            u64(n)
        case .flush(let token):
            u64(token)
        case .flushDone(let f):
            u64(f.token)
            u8(f.status.rawValue)
            u64(f.durableThrough)
        case .error(let e):
            u16(e.code.rawValue)
            try text(e.message, "error.message")
        case .metricKey(let k):
            u32(k.id)
            try name(k.key, "metric_key.key")
            try name(k.context, "metric_key.context")
            try name(k.source, "metric_key.source")
        case .controlRequest(let r):
            u32(r.requestID)
            u8(r.verb)
            try value(r.arguments)
        case .controlReply(let r):
            u32(r.requestID)
            u8(r.status.rawValue)
            try value(r.body)
        case .runStart(let r):
            try runStartBody(r)
        case .params(let v):
            try value(v)
        case .metric(let m):
            metricBody(m)
        case .metricBatch(let ms):
            try count(ms.count, "metric_batch.count")
            for m in ms { metricBody(m) }
        case .log(let l):
            u8(l.level.rawValue)
            i64(l.timestamp)
            try name(l.logger, "log.logger")
            try text(l.message, "log.message")
        case .artifact(let a):
            try artifactBody(a)
        case .modelInfo(let m):
            try name(m.name, "model_info.name")
            u64(m.parameterCount)
            u64(m.memoryBytes)
            try value(m.layers)
        case .modelVersion(let m):
            try modelVersionBody(m)
        case .dataset(let d):
            try datasetBody(d)
        case .runEnd(let e):
            u8(e.status.rawValue)
            i64(e.timestamp)
        case .drops(let total):
            u64(total)
        case .unknown(let kind, _):
            throw .unknownKind(kind)
        }
    }

    private mutating func helloBody(_ h: Hello) throws(WireError) {
        out.append(contentsOf: [0x4C, 0x4F, 0x47, 0x44])
        u8(h.major)
        u8(h.minor)
        u8(h.role.rawValue)
        u8(0)
        u32(h.pid)
        session(h.session)
        u64(h.firstSeq)
        try name(h.clientName, "hello.client_name")
        try name(h.clientVersion, "hello.client_version")
    }

    private mutating func welcomeBody(_ w: Welcome) throws(WireError) {
        u8(w.major)
        u8(w.minor)
        u16(0)
        u64(w.durableThrough)
        u32(w.maxFrameBytes)
        try name(w.daemonVersion, "welcome.daemon_version")
    }

    private mutating func runStartBody(_ r: RunStart) throws(WireError) {
        try name(r.runID, "run_start.run_id")
        try name(r.experiment, "run_start.experiment")
        try name(r.name, "run_start.name")
        try strings(r.tags, "run_start.tags", text: false)
        i32(r.rank)
        i32(r.localRank)
        i32(r.worldSize)
        try name(r.host, "run_start.host")
        try strings(r.commandLine, "run_start.command_line", text: true)
        try text(r.workingDirectory, "run_start.working_directory")
        try name(r.gitCommit, "run_start.git_commit")
        u8(r.gitDirty.rawValue)
        u8(r.seed == nil ? 0 : 1)
        i64(r.seed ?? 0)
        i64(r.startTime)
    }

    private mutating func artifactBody(_ a: Artifact) throws(WireError) {
        try name(a.context, "artifact.context")
        i64(a.step)
        u8(a.role.rawValue)
        u8(a.mode.rawValue)
        try file(a.fileName, a.originalPath, a.size, a.sha256, a.timestamp, "artifact")
    }

    /// The fields ARTIFACT and MODEL_VERSION end with: the copied file and when it was logged.
    private mutating func file(
        _ fileName: String, _ originalPath: String, _ size: UInt64, _ sha256: Digest256, _ timestamp: Int64, _ kind: String
    ) throws(WireError) {
        try name(fileName, kind + ".file_name")
        try text(originalPath, kind + ".original_path")
        u64(size)
        digest(sha256)
        i64(timestamp)
    }

    private mutating func modelVersionBody(_ m: ModelVersion) throws(WireError) {
        try name(m.modelName, "model_version.model_name")
        try name(m.context, "model_version.context")
        i64(m.step)
        u8(m.mode.rawValue)
        try file(m.fileName, m.originalPath, m.size, m.sha256, m.timestamp, "model_version")
    }

    private mutating func datasetBody(_ d: DatasetInfo) throws(WireError) {
        try name(d.label, "dataset.label")
        try name(d.context, "dataset.context")
        u64(d.samples)
        u32(d.batchSize)
        u32(d.workers)
        u8(d.shuffle ? 1 : 0)
        u64(d.batches)
    }
}
