/// Decodes frames from bytes: pure, incremental and bounded.
///
/// `decode(_:)` looks at the start of a buffer and returns one record with the number of bytes
/// it used, or nil when the buffer does not yet hold the whole frame (nothing is consumed).
/// It throws as soon as the bytes can never become a valid frame: a length prefix over the
/// limit is refused after its 4 bytes, before anything is read or allocated.
public struct FrameDecoder: Sendable {
    public var limits: WireLimits
    /// Return `.unknown` for kinds this version does not know instead of throwing
    /// `.unknownKind`. Set it once the peer's HELLO announced a higher minor version.
    public var skipUnknownKinds: Bool

    public init(limits: WireLimits = .default, skipUnknownKinds: Bool = false) {
        self.limits = limits
        self.skipUnknownKinds = skipUnknownKinds
    }

    /// The length prefix at the start of `bytes`, checked against the limits; nil if fewer
    /// than 4 bytes are there.
    public func frameLength(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Int? {
        guard bytes.count >= WireProtocol.lengthPrefixBytes else { return nil }
        let length = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard length > 0 else { throw .emptyFrame }
        guard UInt64(length) <= UInt64(limits.maxFrameBytes) else {
            throw .frameTooLarge(length: length, limit: limits.maxFrameBytes)
        }
        return Int(length)
    }

    /// Decodes the frame at the start of `bytes`; nil when more bytes are needed.
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> (record: Record, consumed: Int)? {
        guard let length = try frameLength(bytes) else { return nil }
        let total = WireProtocol.lengthPrefixBytes + length
        guard bytes.count >= total else { return nil }
        let kind = bytes[WireProtocol.lengthPrefixBytes]
        let body = UnsafeRawBufferPointer(rebasing: bytes[(WireProtocol.lengthPrefixBytes + 1)..<total])
        var r = BodyReader(bytes: body, kind: kind, limits: limits)
        let record = try r.record(skipUnknown: skipUnknownKinds)
        if r.remaining > 0, FrameKind(rawValue: kind) != nil {
            throw .trailingBytes(kind: kind, count: r.remaining)
        }
        return (record, total)
    }

    /// Decodes every complete frame in `bytes`, for tools and tests; throws `.truncatedStream`
    /// if bytes are left over.
    public func decodeAll(_ bytes: [UInt8]) throws(WireError) -> [Record] {
        var stream = StreamDecoder(decoder: self)
        stream.feed(bytes)
        var records: [Record] = []
        while let r = try stream.next() { records.append(r) }
        try stream.finish()
        return records
    }
}

/// A `FrameDecoder` with its own buffer: feed bytes as they arrive, take records out.
/// Used by clients (the SDK reading acknowledgements, logctl) and tests.
public struct StreamDecoder: Sendable {
    public var decoder: FrameDecoder
    private var buffer: [UInt8] = []
    private var start = 0

    public init(decoder: FrameDecoder = FrameDecoder()) { self.decoder = decoder }

    /// Bytes fed but not yet returned as records.
    public var bufferedBytes: Int { buffer.count - start }

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0, start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete record, or nil when more bytes are needed.
    public mutating func next() throws(WireError) -> Record? {
        let s = start
        let decoder = self.decoder
        let result = buffer.withUnsafeBytes { raw in
            Result { () throws(WireError) in try decoder.decode(UnsafeRawBufferPointer(rebasing: raw[s...])) }
        }
        guard let (record, consumed) = try result.get() else { return nil }
        start += consumed
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return record
    }

    /// Call at end of stream: throws `.truncatedStream` if a partial frame is buffered.
    public func finish() throws(WireError) {
        if bufferedBytes > 0 { throw .truncatedStream(bufferedBytes: bufferedBytes) }
    }
}

/// Reads little-endian fields from one frame body, checking every length before use.
struct BodyReader {
    let bytes: UnsafeRawBufferPointer
    let kind: UInt8
    let limits: WireLimits
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, kind: UInt8, limits: WireLimits) {
        self.bytes = bytes
        self.kind = kind
        self.limits = limits
    }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int) throws(WireError) {
        guard n >= 0, n <= remaining else { throw .truncatedBody(kind: kind) }
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws(WireError) -> T {
        try need(MemoryLayout<T>.size)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u8() throws(WireError) -> UInt8 { try load(UInt8.self) }
    mutating func u16() throws(WireError) -> UInt16 { try load(UInt16.self) }
    mutating func u32() throws(WireError) -> UInt32 { try load(UInt32.self) }
    mutating func u64() throws(WireError) -> UInt64 { try load(UInt64.self) }
    mutating func i32() throws(WireError) -> Int32 { try load(Int32.self) }
    mutating func i64() throws(WireError) -> Int64 { try load(Int64.self) }
    mutating func f64() throws(WireError) -> Double { Double(bitPattern: try load(UInt64.self)) }
    mutating func bool(_ field: String) throws(WireError) -> Bool {
        let b = try u8()
        guard b <= 1 else { throw .invalidEnum(field: field, value: UInt64(b)) }
        return b == 1
    }

    mutating func bigEndianU64() throws(WireError) -> UInt64 {
        try need(8)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(bigEndian: v)
    }

    mutating func string(_ field: String, limit: Int) throws(WireError) -> String {
        let n = try u32()
        guard UInt64(n) <= UInt64(limit) else { throw .stringTooLong(field: field, length: n, limit: limit) }
        try need(Int(n))
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))])
        guard let s = String(validating: slice, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        offset += Int(n)
        return s
    }

    mutating func name(_ field: String) throws(WireError) -> String { try string(field, limit: limits.maxNameBytes) }
    mutating func text(_ field: String) throws(WireError) -> String { try string(field, limit: limits.maxTextBytes) }

    /// A collection count, refused if over the limit or if `minElementBytes` per element
    /// cannot fit in what is left of the frame — checked before anything is reserved.
    mutating func count(_ field: String, minElementBytes: Int) throws(WireError) -> Int {
        let n = try u32()
        let fits = UInt64(n) * UInt64(minElementBytes) <= UInt64(remaining)
        guard UInt64(n) <= UInt64(limits.maxCollectionCount), fits else {
            throw .collectionTooLarge(field: field, count: n, limit: limits.maxCollectionCount)
        }
        return Int(n)
    }

    mutating func strings(_ field: String, text: Bool) throws(WireError) -> [String] {
        let n = try count(field, minElementBytes: 4)
        var list: [String] = []
        list.reserveCapacity(n)
        for _ in 0..<n { list.append(text ? try self.text(field) : try name(field)) }
        return list
    }

    mutating func session() throws(WireError) -> SessionID {
        let high = try bigEndianU64()
        return SessionID(high: high, low: try bigEndianU64())
    }

    mutating func digest() throws(WireError) -> Digest256 {
        let a = try bigEndianU64(), b = try bigEndianU64(), c = try bigEndianU64()
        return Digest256(words: (a, b, c, try bigEndianU64()))
    }

    mutating func enumByte<E: RawRepresentable>(_: E.Type, _ field: String) throws(WireError) -> E
    where E.RawValue == UInt8 {
        let b = try u8()
        guard let e = E(rawValue: b) else { throw .invalidEnum(field: field, value: UInt64(b)) }
        return e
    }

    mutating func value(depth: Int = 1) throws(WireError) -> Value {
        guard depth <= limits.maxDepth else { throw .nestingTooDeep(limit: limits.maxDepth) }
        let tagByte = try u8()
        guard let tag = Value.Tag(rawValue: tagByte) else {
            throw .invalidEnum(field: "value.tag", value: UInt64(tagByte))
        }
        switch tag {
        case .null: return .null
        case .false: return .bool(false)
        case .true: return .bool(true)
        case .int: return .int(try i64())
        case .double: return .double(try f64())
        case .string: return .string(try text("value.string"))
        case .list:
            let n = try count("value.list", minElementBytes: 1)
            var items: [Value] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(depth: depth + 1)) }
            return .list(items)
        case .map:
            let n = try count("value.map", minElementBytes: 5)
            var entries: [(key: String, value: Value)] = []
            entries.reserveCapacity(n)
            for _ in 0..<n {
                let key = try text("value.key")
                entries.append((key: key, value: try value(depth: depth + 1)))
            }
            return .map(entries)
        }
    }

    mutating func metric() throws(WireError) -> Metric {
        let id = try u32(), step = try i64(), ts = try i64()
        return Metric(keyID: id, step: step, timestamp: ts, value: try f64())
    }

    mutating func record(skipUnknown: Bool) throws(WireError) -> Record {
        guard let k = FrameKind(rawValue: kind) else {
            guard skipUnknown else { throw .unknownKind(kind) }
            offset = bytes.count
            return .unknown(kind: kind, bodyBytes: bytes.count)
        }
        switch k {
        case .hello:
            return try helloBody()
        case .welcome:
            return try welcomeBody()
        case .ack:
            return .ack(durableThrough: try u64())
        case .flush:
            return .flush(token: try u64())
        case .flushDone:
            let token = try u64()
            let status = try enumByte(ReplyStatus.self, "flush_done.status")
            return .flushDone(FlushDone(token: token, status: status, durableThrough: try u64()))
        case .error:
            let raw = try u16()
            guard let code = ErrorCode(rawValue: raw) else { throw .invalidEnum(field: "error.code", value: UInt64(raw)) }
            return .error(ErrorReport(code: code, message: try text("error.message")))
        case .metricKey:
            let id = try u32()
            let key = try name("metric_key.key"), context = try name("metric_key.context")
            return .metricKey(MetricKey(id: id, key: key, context: context, source: try name("metric_key.source")))
        case .controlRequest:
            let id = try u32(), verb = try u8()
            return .controlRequest(ControlRequest(requestID: id, rawVerb: verb, arguments: try value()))
        case .controlReply:
            let id = try u32()
            let status = try enumByte(ReplyStatus.self, "control_reply.status")
            return .controlReply(ControlReply(requestID: id, status: status, body: try value()))
        case .runStart:
            return try runStartBody()
        case .params:
            return .params(try value())
        case .metric:
            return .metric(try metric())
        case .metricBatch:
            let n = try count("metric_batch.count", minElementBytes: Metric.bodyBytes)
            var ms: [Metric] = []
            ms.reserveCapacity(n)
            for _ in 0..<n { ms.append(try metric()) }
            return .metricBatch(ms)
        case .log:
            let level = try enumByte(LogLevel.self, "log.level")
            let ts = try i64()
            let logger = try name("log.logger")
            return .log(LogLine(level: level, timestamp: ts, logger: logger, message: try text("log.message")))
        case .artifact:
            return try artifactBody()
        case .modelInfo:
            let modelName = try name("model_info.name")
            let params = try u64(), memory = try u64()
            return .modelInfo(ModelInfo(name: modelName, parameterCount: params, memoryBytes: memory, layers: try value()))
        case .modelVersion:
            return try modelVersionBody()
        case .dataset:
            return try datasetBody()
        case .runEnd:
            let status = try enumByte(RunStatus.self, "run_end.status")
            return .runEnd(RunEnd(status: status, timestamp: try i64()))
        case .drops:
            return .drops(total: try u64())
        }
    }

    /// The body of a hello frame.
    private mutating func helloBody() throws(WireError) -> Record {
        try need(4)
        guard bytes[0] == 0x4C, bytes[1] == 0x4F, bytes[2] == 0x47, bytes[3] == 0x44 else { throw .badMagic }
        offset = 4
        let major = try u8(), minor = try u8()
        guard major == WireProtocol.majorVersion else { throw .unsupportedVersion(major: major, minor: minor) }
        let role = try enumByte(Role.self, "hello.role")
        _ = try u8()  // reserved
        let pid = try u32()
        let session = try session()
        let firstSeq = try u64()
        let clientName = try name("hello.client_name")
        let version = try name("hello.client_version")
        return .hello(
            Hello(
                role: role, pid: pid, session: session, firstSeq: firstSeq, clientName: clientName,
                clientVersion: version, major: major, minor: minor))
    }

    /// The body of a welcome frame.
    private mutating func welcomeBody() throws(WireError) -> Record {
        let major = try u8(), minor = try u8()
        guard major == WireProtocol.majorVersion else { throw .unsupportedVersion(major: major, minor: minor) }
        _ = try u16()
        let durable = try u64(), maxFrame = try u32()
        let version = try name("welcome.daemon_version")
        return .welcome(
            Welcome(
                durableThrough: durable, maxFrameBytes: maxFrame, daemonVersion: version, major: major,
                minor: minor))
    }

    /// The body of a runStart frame.
    private mutating func runStartBody() throws(WireError) -> Record {
        let runID = try name("run_start.run_id")
        let experiment = try name("run_start.experiment")
        let runName = try name("run_start.name")
        let tags = try strings("run_start.tags", text: false)
        let rank = try i32(), localRank = try i32(), worldSize = try i32()
        let host = try name("run_start.host")
        let argv = try strings("run_start.command_line", text: true)
        let cwd = try text("run_start.working_directory")
        let commit = try name("run_start.git_commit")
        let dirty = try enumByte(GitDirty.self, "run_start.git_dirty")
        let hasSeed = try bool("run_start.has_seed")
        let seed = try i64()
        let start = try i64()
        return .runStart(
            RunStart(
                runID: runID, experiment: experiment, name: runName, tags: tags, rank: rank,
                localRank: localRank, worldSize: worldSize, host: host, commandLine: argv,
                workingDirectory: cwd, gitCommit: commit, gitDirty: dirty, seed: hasSeed ? seed : nil,
                startTime: start))
    }

    /// The body of a artifact frame.
    private mutating func artifactBody() throws(WireError) -> Record {
        let context = try name("artifact.context")
        let step = try i64()
        let role = try enumByte(ArtifactRole.self, "artifact.role")
        let mode = try enumByte(ArtifactMode.self, "artifact.mode")
        let file = try name("artifact.file_name")
        let path = try text("artifact.original_path")
        let size = try u64(), digest = try digest(), ts = try i64()
        return .artifact(
            Artifact(
                context: context, step: step, role: role, mode: mode, fileName: file, originalPath: path,
                size: size, sha256: digest, timestamp: ts))
    }

    /// The body of a modelVersion frame.
    private mutating func modelVersionBody() throws(WireError) -> Record {
        let model = try name("model_version.model_name")
        let context = try name("model_version.context")
        let step = try i64()
        let mode = try enumByte(ArtifactMode.self, "model_version.mode")
        let file = try name("model_version.file_name")
        let path = try text("model_version.original_path")
        let size = try u64(), digest = try digest(), ts = try i64()
        return .modelVersion(
            ModelVersion(
                modelName: model, context: context, step: step, mode: mode, fileName: file,
                originalPath: path, size: size, sha256: digest, timestamp: ts))
    }

    /// The body of a dataset frame.
    private mutating func datasetBody() throws(WireError) -> Record {
        let label = try name("dataset.label"), context = try name("dataset.context")
        let samples = try u64(), batchSize = try u32(), workers = try u32()
        let shuffle = try bool("dataset.shuffle")
        return .dataset(
            DatasetInfo(
                label: label, context: context, samples: samples, batchSize: batchSize, workers: workers,
                shuffle: shuffle, batches: try u64()))
    }
}
