/// Constants and small enums of the logd wire protocol, version 1.
///
/// docs/WIRE_PROTOCOL.md is the normative description; every number here is in it.
public enum WireProtocol {
    /// The four bytes that open every HELLO body: ASCII `LOGD`.
    public static let magic: (UInt8, UInt8, UInt8, UInt8) = (0x4C, 0x4F, 0x47, 0x44)
    /// Major version: a peer with another major version is refused.
    public static let majorVersion: UInt8 = 1
    /// Minor version: additions only; a peer with a higher minor version may send kinds we skip.
    public static let minorVersion: UInt8 = 0
    /// Bytes of the length prefix that opens every frame.
    public static let lengthPrefixBytes = 4
    /// Sentinel step meaning "no step was given" (CSV leaves the cell empty).
    public static let noStep: Int64 = .min
}

/// The kind byte that follows a frame's length prefix.
///
/// Kinds 0x01–0x1F are connection frames (never numbered); kinds 0x20–0x7F are data records,
/// numbered in a producer session; 0x80–0xFF are reserved.
public enum FrameKind: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case welcome = 0x02
    case ack = 0x03
    case flush = 0x04
    case flushDone = 0x05
    case error = 0x06
    case metricKey = 0x07
    case controlRequest = 0x08
    case controlReply = 0x09
    case drops = 0x0A

    case runStart = 0x20
    case params = 0x21
    case metric = 0x22
    case metricBatch = 0x23
    case log = 0x24
    case artifact = 0x25
    case modelInfo = 0x26
    case modelVersion = 0x27
    case dataset = 0x28
    case runEnd = 0x29

    /// Whether frames of this raw kind take a sequence number in a producer session.
    /// Holds for kinds this version does not know too, so that numbering survives skipping.
    public static func isNumbered(_ raw: UInt8) -> Bool { raw >= 0x20 && raw <= 0x7F }

    /// The snake_case name used in docs, golden vectors and logs.
    public var name: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .ack: "ack"
        case .flush: "flush"
        case .flushDone: "flush_done"
        case .error: "error"
        case .metricKey: "metric_key"
        case .controlRequest: "control_request"
        case .controlReply: "control_reply"
        case .runStart: "run_start"
        case .params: "params"
        case .metric: "metric"
        case .metricBatch: "metric_batch"
        case .log: "log"
        case .artifact: "artifact"
        case .modelInfo: "model_info"
        case .modelVersion: "model_version"
        case .dataset: "dataset"
        case .runEnd: "run_end"
        case .drops: "drops"
        }
    }
}

/// What a connecting client is: a producer streams records of a training process,
/// a control client (logctl) asks the daemon for status or a flush.
public enum Role: UInt8, Sendable {
    case producer = 1
    case control = 2
}

/// Severity of a text log line, ordered like swift-log's `Logger.Level`.
public enum LogLevel: UInt8, Sendable, CaseIterable, Comparable {
    case trace = 0, debug, info, notice, warning, error, critical

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    public var name: String {
        switch self {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }
}

/// Whether an artifact was read by the run (input) or produced by it (output).
public enum ArtifactRole: UInt8, Sendable {
    case input = 1
    case output = 2

    public var name: String { self == .input ? "input" : "output" }
}

/// How an artifact travels: a copy sends the open file descriptor (SCM_RIGHTS) with the frame;
/// a reference sends only the path, size and hash the client computed.
public enum ArtifactMode: UInt8, Sendable {
    case copy = 1
    case reference = 2

    public var name: String { self == .copy ? "copy" : "reference" }
}

/// How a run (or one producer's part in it) ended.
/// A run's status in logd's tables and on disk (run.yaml `status`): the three a producer ends
/// with (`RunStatus`, on the wire), plus `running` and `crashed`, which only logd decides.
public enum RunPhase: String, Sendable, CaseIterable {
    case running, finished, failed, killed, crashed

    public init(_ status: RunStatus) {
        switch status {
        case .finished: self = .finished
        case .failed: self = .failed
        case .killed: self = .killed
        }
    }

    /// Ended as its producers said (finished, failed, killed): not running, not crashed.
    public var isEnded: Bool { self == .finished || self == .failed || self == .killed }
}

public enum RunStatus: UInt8, Sendable {
    case finished = 1
    case failed = 2
    case killed = 3

    public var name: String {
        switch self {
        case .finished: "finished"
        case .failed: "failed"
        case .killed: "killed"
        }
    }
}

/// State of the working tree the run was started from.
public enum GitDirty: UInt8, Sendable {
    case clean = 0
    case dirty = 1
    case unknown = 2

    public var name: String {
        switch self {
        case .clean: "clean"
        case .dirty: "dirty"
        case .unknown: "unknown"
        }
    }
}

/// The named control verbs shared by logd and logctl (docs/CONTROL_PROTOCOL.md).
public enum ControlVerb: UInt8, Sendable, CaseIterable {
    /// Daemon state: connections, runs, rates, queue depth, errors.
    case status = 1
    /// Barrier: reply once everything received before the request is written and fsynced.
    case flush = 2

    public var name: String {
        switch self {
        case .status: "status"
        case .flush: "flush"
        }
    }
}

/// Outcome of a control request or a flush.
public enum ReplyStatus: UInt8, Sendable {
    case ok = 0
    /// The request was understood but failed (the body's `error` says why).
    case failed = 1
    /// The request did not complete within its timeout.
    case timedOut = 2
    /// The verb is not known to this daemon.
    case unknownVerb = 3
    /// The arguments were malformed (the body's `error` says which).
    case badRequest = 4

    public var name: String {
        switch self {
        case .ok: "ok"
        case .failed: "failed"
        case .timedOut: "timed_out"
        case .unknownVerb: "unknown_verb"
        case .badRequest: "bad_request"
        }
    }
}

/// Codes carried by an ERROR frame, sent by the daemon just before it closes a connection.
public enum ErrorCode: UInt16, Sendable {
    case malformedFrame = 1
    case frameTooLarge = 2
    case protocolViolation = 3
    case unsupportedVersion = 4
    case refused = 5
    case shuttingDown = 6
}
