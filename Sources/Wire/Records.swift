/// The records of the logd wire protocol, version 1: one struct per frame kind.
/// docs/WIRE_PROTOCOL.md gives the byte layout of each.

/// 16 random bytes naming a producer session; it survives reconnects so the daemon can
/// skip frames it already has.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public var bytes: (UInt64, UInt64)

    public init(high: UInt64, low: UInt64) { bytes = (high, low) }

    public static let zero = SessionID(high: 0, low: 0)

    public static func == (a: SessionID, b: SessionID) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) {
        h.combine(bytes.0)
        h.combine(bytes.1)
    }

    /// 32 lowercase hex digits, most significant first.
    public var description: String { hex64(bytes.0) + hex64(bytes.1) }

    /// Parses 32 hex digits.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 32,
            let high = UInt64(String(decoding: utf8[0..<16], as: UTF8.self), radix: 16),
            let low = UInt64(String(decoding: utf8[16..<32], as: UTF8.self), radix: 16)
        else { return nil }
        self.init(high: high, low: low)
    }
}

/// A SHA-256 digest; all zero means "not known".
public struct Digest256: Hashable, Sendable, CustomStringConvertible {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32)
        func word(_ i: Int) -> UInt64 { bytes[i * 8..<i * 8 + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        words = (word(0), word(1), word(2), word(3))
    }

    public static let zero = Digest256(words: (0, 0, 0, 0))

    public var isZero: Bool { self == .zero }
    public static func == (a: Digest256, b: Digest256) -> Bool { a.words == b.words }
    public func hash(into h: inout Hasher) {
        h.combine(words.0)
        h.combine(words.1)
        h.combine(words.2)
        h.combine(words.3)
    }

    /// 64 lowercase hex digits, as `sha256sum` prints them.
    public var description: String { hex64(words.0) + hex64(words.1) + hex64(words.2) + hex64(words.3) }
}

func hex64(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// HELLO (0x01), client → daemon, the first frame on every connection.
public struct Hello: Equatable, Sendable {
    public var major: UInt8
    public var minor: UInt8
    public var role: Role
    /// The client's own word for its pid; the daemon records the kernel's (SO_PEERCRED).
    public var pid: UInt32
    /// Producer: the session to open or resume. Control: zero.
    public var session: SessionID
    /// Sequence number the client gives its first numbered frame on this connection
    /// (the oldest frame it still holds, resending what was not acknowledged).
    public var firstSeq: UInt64
    public var clientName: String
    public var clientVersion: String

    public init(
        role: Role, pid: UInt32, session: SessionID, firstSeq: UInt64, clientName: String,
        clientVersion: String, major: UInt8 = WireProtocol.majorVersion, minor: UInt8 = WireProtocol.minorVersion
    ) {
        self.major = major
        self.minor = minor
        self.role = role
        self.pid = pid
        self.session = session
        self.firstSeq = firstSeq
        self.clientName = clientName
        self.clientVersion = clientVersion
    }
}

/// WELCOME (0x02), daemon → client, the answer to HELLO.
public struct Welcome: Equatable, Sendable {
    public var major: UInt8
    public var minor: UInt8
    /// Highest sequence number of this session already durable (0: none).
    public var durableThrough: UInt64
    /// Largest frame the daemon accepts (its `maxFrameBytes`).
    public var maxFrameBytes: UInt32
    public var daemonVersion: String

    public init(
        durableThrough: UInt64, maxFrameBytes: UInt32, daemonVersion: String,
        major: UInt8 = WireProtocol.majorVersion, minor: UInt8 = WireProtocol.minorVersion
    ) {
        self.major = major
        self.minor = minor
        self.durableThrough = durableThrough
        self.maxFrameBytes = maxFrameBytes
        self.daemonVersion = daemonVersion
    }
}

/// FLUSH_DONE (0x05), daemon → client: the barrier named by `token` completed.
public struct FlushDone: Equatable, Sendable {
    public var token: UInt64
    public var status: ReplyStatus
    public var durableThrough: UInt64

    public init(token: UInt64, status: ReplyStatus, durableThrough: UInt64) {
        self.token = token
        self.status = status
        self.durableThrough = durableThrough
    }
}

/// ERROR (0x06), daemon → client, sent just before the daemon closes the connection.
public struct ErrorReport: Equatable, Sendable {
    public var code: ErrorCode
    public var message: String

    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}

/// METRIC_KEY (0x07): interns (key, context, source) to a small id for this connection.
public struct MetricKey: Equatable, Sendable {
    public var id: UInt32
    public var key: String
    /// `training`, `validation`, `testing` or a custom name.
    public var context: String
    /// Where the value comes from (a module, a layer); empty when not given.
    public var source: String

    public init(id: UInt32, key: String, context: String, source: String = "") {
        self.id = id
        self.key = key
        self.context = context
        self.source = source
    }
}

/// CONTROL_REQUEST (0x08), logctl → daemon.
public struct ControlRequest: Equatable, Sendable {
    public var requestID: UInt32
    /// The raw verb byte; `ControlVerb(rawValue:)` names the known ones.
    public var verb: UInt8
    public var arguments: Value

    public init(requestID: UInt32, verb: ControlVerb, arguments: Value = .map([])) {
        self.init(requestID: requestID, rawVerb: verb.rawValue, arguments: arguments)
    }

    public init(requestID: UInt32, rawVerb: UInt8, arguments: Value) {
        self.requestID = requestID
        self.verb = rawVerb
        self.arguments = arguments
    }
}

/// CONTROL_REPLY (0x09), daemon → logctl.
public struct ControlReply: Equatable, Sendable {
    public var requestID: UInt32
    public var status: ReplyStatus
    /// The verb's result; on failure a map with an `error` string.
    public var body: Value

    public init(requestID: UInt32, status: ReplyStatus, body: Value) {
        self.requestID = requestID
        self.status = status
        self.body = body
    }
}

/// RUN_START (0x20): identity of the run this producer logs into.
public struct RunStart: Equatable, Sendable {
    /// Chosen by the client; producers that send the same id (DDP ranks) share one run.
    public var runID: String
    public var experiment: String
    public var name: String
    public var tags: [String]
    public var rank: Int32
    public var localRank: Int32
    public var worldSize: Int32
    public var host: String
    public var commandLine: [String]
    public var workingDirectory: String
    /// Empty when not known.
    public var gitCommit: String
    public var gitDirty: GitDirty
    public var seed: Int64?
    /// Nanoseconds since the Unix epoch.
    public var startTime: Int64

    public init(
        runID: String, experiment: String, name: String, tags: [String] = [], rank: Int32 = 0,
        localRank: Int32 = 0, worldSize: Int32 = 1, host: String = "", commandLine: [String] = [],
        workingDirectory: String = "", gitCommit: String = "", gitDirty: GitDirty = .unknown,
        seed: Int64? = nil, startTime: Int64 = 0
    ) {
        self.runID = runID
        self.experiment = experiment
        self.name = name
        self.tags = tags
        self.rank = rank
        self.localRank = localRank
        self.worldSize = worldSize
        self.host = host
        self.commandLine = commandLine
        self.workingDirectory = workingDirectory
        self.gitCommit = gitCommit
        self.gitDirty = gitDirty
        self.seed = seed
        self.startTime = startTime
    }
}

/// METRIC (0x22): one sample of an interned key. Fixed size: 28 body bytes, 33 with framing.
public struct Metric: Equatable, Sendable {
    public var keyID: UInt32
    /// `WireProtocol.noStep` when none was given.
    public var step: Int64
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    public var value: Double

    public init(keyID: UInt32, step: Int64, timestamp: Int64, value: Double) {
        self.keyID = keyID
        self.step = step
        self.timestamp = timestamp
        self.value = value
    }

    /// Body bytes of one metric (also the stride of a METRIC_BATCH entry).
    public static let bodyBytes = 28
    /// Whole frame bytes of a METRIC: length prefix, kind, body.
    public static let frameBytes = 4 + 1 + bodyBytes

    public static func == (a: Metric, b: Metric) -> Bool {
        a.keyID == b.keyID && a.step == b.step && a.timestamp == b.timestamp
            && a.value.bitPattern == b.value.bitPattern
    }
}

/// LOG (0x24): one text line for the run's main.log.
public struct LogLine: Equatable, Sendable {
    public var level: LogLevel
    public var timestamp: Int64
    public var logger: String
    public var message: String

    public init(level: LogLevel, timestamp: Int64, logger: String, message: String) {
        self.level = level
        self.timestamp = timestamp
        self.logger = logger
        self.message = message
    }
}

/// ARTIFACT (0x25): a file the run used or produced. In copy mode exactly one open file
/// descriptor travels with the frame's bytes (SCM_RIGHTS).
public struct Artifact: Equatable, Sendable {
    public var context: String
    public var step: Int64
    public var role: ArtifactRole
    public var mode: ArtifactMode
    /// Name to store the copy under in `artifacts/` (one path component).
    public var fileName: String
    /// The path the client knows the file by (recorded, never opened by the daemon).
    public var originalPath: String
    /// Size in bytes as the client saw it (copy mode: 0 lets the daemon measure).
    public var size: UInt64
    /// Client-computed SHA-256; zero when not computed (copy mode: the daemon computes it).
    public var sha256: Digest256
    public var timestamp: Int64

    public init(
        context: String, step: Int64, role: ArtifactRole, mode: ArtifactMode, fileName: String,
        originalPath: String, size: UInt64 = 0, sha256: Digest256 = .zero, timestamp: Int64 = 0
    ) {
        self.context = context
        self.step = step
        self.role = role
        self.mode = mode
        self.fileName = fileName
        self.originalPath = originalPath
        self.size = size
        self.sha256 = sha256
        self.timestamp = timestamp
    }
}

/// MODEL_INFO (0x26): what a model is.
public struct ModelInfo: Equatable, Sendable {
    public var name: String
    public var parameterCount: UInt64
    public var memoryBytes: UInt64
    /// Layers as a value tree, e.g. a list of maps `{name, type, parameters}`.
    public var layers: Value

    public init(name: String, parameterCount: UInt64, memoryBytes: UInt64, layers: Value = .list([])) {
        self.name = name
        self.parameterCount = parameterCount
        self.memoryBytes = memoryBytes
        self.layers = layers
    }
}

/// MODEL_VERSION (0x27): a saved model file; the daemon gives it the next version id.
public struct ModelVersion: Equatable, Sendable {
    public var modelName: String
    public var context: String
    public var step: Int64
    public var mode: ArtifactMode
    public var fileName: String
    public var originalPath: String
    public var size: UInt64
    public var sha256: Digest256
    public var timestamp: Int64

    public init(
        modelName: String, context: String, step: Int64, mode: ArtifactMode, fileName: String,
        originalPath: String, size: UInt64 = 0, sha256: Digest256 = .zero, timestamp: Int64 = 0
    ) {
        self.modelName = modelName
        self.context = context
        self.step = step
        self.mode = mode
        self.fileName = fileName
        self.originalPath = originalPath
        self.size = size
        self.sha256 = sha256
        self.timestamp = timestamp
    }
}

/// DATASET (0x28): what a data set and its loader look like.
public struct DatasetInfo: Equatable, Sendable {
    public var label: String
    public var context: String
    public var samples: UInt64
    public var batchSize: UInt32
    public var workers: UInt32
    public var shuffle: Bool
    public var batches: UInt64

    public init(
        label: String, context: String, samples: UInt64, batchSize: UInt32, workers: UInt32,
        shuffle: Bool, batches: UInt64
    ) {
        self.label = label
        self.context = context
        self.samples = samples
        self.batchSize = batchSize
        self.workers = workers
        self.shuffle = shuffle
        self.batches = batches
    }
}

/// RUN_END (0x29): this producer is done with its run.
public struct RunEnd: Equatable, Sendable {
    public var status: RunStatus
    public var timestamp: Int64

    public init(status: RunStatus, timestamp: Int64) {
        self.status = status
        self.timestamp = timestamp
    }
}

/// One decoded frame.
public enum Record: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    /// ACK (0x03), daemon → producer: every frame of the session through this number is durable.
    case ack(durableThrough: UInt64)
    /// FLUSH (0x04), producer → daemon: a barrier; answered by FLUSH_DONE with the same token.
    case flush(token: UInt64)
    case flushDone(FlushDone)
    case error(ErrorReport)
    case metricKey(MetricKey)
    case controlRequest(ControlRequest)
    case controlReply(ControlReply)
    case runStart(RunStart)
    /// PARAMS (0x21): a value tree merged into the run's config (`Value.merging`).
    case params(Value)
    case metric(Metric)
    case metricBatch([Metric])
    case log(LogLine)
    case artifact(Artifact)
    case modelInfo(ModelInfo)
    case modelVersion(ModelVersion)
    case dataset(DatasetInfo)
    case runEnd(RunEnd)
    /// DROPS (0x0A), producer → daemon, not numbered: how many records this producer has
    /// dropped so far under its overflow policy (a running total, so a lost or repeated report
    /// does no harm, and it needs no room in the producer's full buffer).
    case drops(total: UInt64)
    /// A kind this version does not know, skipped because the peer announced a newer minor version.
    case unknown(kind: UInt8, bodyBytes: Int)

    /// The raw kind byte this record travels under.
    public var kind: UInt8 {
        switch self {
        case .hello: FrameKind.hello.rawValue
        case .welcome: FrameKind.welcome.rawValue
        case .ack: FrameKind.ack.rawValue
        case .flush: FrameKind.flush.rawValue
        case .flushDone: FrameKind.flushDone.rawValue
        case .error: FrameKind.error.rawValue
        case .metricKey: FrameKind.metricKey.rawValue
        case .controlRequest: FrameKind.controlRequest.rawValue
        case .controlReply: FrameKind.controlReply.rawValue
        case .runStart: FrameKind.runStart.rawValue
        case .params: FrameKind.params.rawValue
        case .metric: FrameKind.metric.rawValue
        case .metricBatch: FrameKind.metricBatch.rawValue
        case .log: FrameKind.log.rawValue
        case .artifact: FrameKind.artifact.rawValue
        case .modelInfo: FrameKind.modelInfo.rawValue
        case .modelVersion: FrameKind.modelVersion.rawValue
        case .dataset: FrameKind.dataset.rawValue
        case .runEnd: FrameKind.runEnd.rawValue
        case .drops: FrameKind.drops.rawValue
        case .unknown(let kind, _): kind
        }
    }

    /// Whether this record takes a sequence number in a producer session.
    public var isNumbered: Bool { FrameKind.isNumbered(kind) }
}
