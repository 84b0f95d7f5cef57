#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// logd's configuration: a value with working defaults, so `logd` runs without a config file.
///
/// Precedence: built-in defaults < environment (`LOGD_SOCKET`, `LOGD_DATA_ROOT`) < config file
/// < command-line flags. docs/CONFIGURATION.md and packaging/logd.yaml describe every key.
public struct LogdConfig: Sendable, Equatable {
    /// Path of the Unix socket producers and logctl connect to.
    public var socket: String
    /// Group whose members may connect (socket mode 0660, directory 0750); empty: owner only (0600/0700).
    public var socketGroup: String
    /// Root of the run directories: `<data_root>/<experiment>/<YYYY-MM-DD_HH-MM-SS>_<run name>/`.
    public var dataRoot: String
    /// Largest frame accepted from a client (length prefix), bytes.
    public var maxFrameBytes: Int
    /// Writer queue high-water mark in bytes: above it the loop stops reading sockets;
    /// it resumes below half of it.
    public var writerQueueBytes: Int
    /// Size at which main.log and metrics.csv rotate to a numbered segment, bytes.
    public var rotateBytes: Int
    /// Rotated main.log segments to keep per run (oldest removed first); 0 keeps all.
    public var keepLogSegments: Int
    /// How often the writer makes received data durable (fsync) and acknowledges it, ms.
    public var ackIntervalMs: Int
    /// Least time between two rewrites of a run's snapshot files while it is active, ms.
    public var snapshotIntervalMs: Int
    /// After a restart, how long a run found unfinished waits for its producers to reconnect
    /// before it is marked `crashed`, seconds.
    public var resumeGraceSeconds: Int
    /// When every producer of a run has ended but fewer than its `world_size` have joined (the
    /// other ranks run on other nodes, or have not started), how long the run waits for more
    /// ranks before it ends, seconds. A rank that comes later reopens the same directory.
    public var rankWaitSeconds: Int
    /// Most simultaneous client connections; more are refused (counted in status).
    public var maxConnections: Int
    /// All connections' partially received frames together, bytes: a connection whose next
    /// frame would take the total past it is closed (ERROR `refused`). Bounds what clients that
    /// send most of a big frame and stop can hold.
    public var maxPartialFrameBytes: Int
    /// Distinct metric keys per run; further METRIC_KEY definitions are refused (counted) and
    /// metrics that use them are dropped (counted).
    public var maxKeysPerRun: Int
    /// Bytes of key names (context + key + source) per run; past it, keys are refused as above.
    public var maxKeyBytesPerRun: Int
    /// Bytes of PARAMS frames per run; later PARAMS are refused (counted).
    public var maxParamsBytesPerRun: Int
    /// Distinct metric keys of all unfinished runs together: what bounds the daemon's memory when
    /// many runs each define many keys (the per-run limit alone does not).
    public var maxKeysTotal: Int
    /// Bytes of PARAMS of all unfinished runs together.
    public var maxParamsBytesTotal: Int
    /// FLUSH barriers (producer FLUSH or control flush) one connection may have pending; one more
    /// closes that connection (ERROR `refused`).
    public var maxPendingBarriers: Int
    /// Mode of run directories (files get it minus the execute bits): 0750 / 0640 by default,
    /// so other users of a shared node do not read the runs.
    public var runDirectoryMode: Int
    /// logd's own messages on stderr at this level and above: debug, info, warning, error.
    public var logLevel: String
    /// Write TensorBoard event files in each run directory as records arrive (EventFile.swift).
    public var tensorboard: Bool

    public init(environment: [String: String] = LogdConfig.processEnvironment()) {
        socket = LogdConfig.defaultSocket(environment)
        socketGroup = ""
        dataRoot = LogdConfig.defaultDataRoot(environment)
        maxFrameBytes = 1 << 20
        writerQueueBytes = 2 << 20
        rotateBytes = 64 << 20
        keepLogSegments = 0
        ackIntervalMs = 50
        snapshotIntervalMs = 1000
        resumeGraceSeconds = 60
        rankWaitSeconds = 30
        maxConnections = 4096
        maxPartialFrameBytes = 32 << 20
        maxKeysPerRun = 20_000
        maxKeyBytesPerRun = 4 << 20
        maxParamsBytesPerRun = 8 << 20
        maxKeysTotal = 40_000
        maxParamsBytesTotal = 16 << 20
        maxPendingBarriers = 64
        runDirectoryMode = 0o750
        logLevel = "info"
        tensorboard = true
    }

    /// `$LOGD_SOCKET`, else `$XDG_RUNTIME_DIR/logd/logd.sock`, else `/tmp/logd-<uid>/logd.sock`.
    public static func defaultSocket(_ env: [String: String]) -> String { DefaultPaths.socket(env) }

    public static func defaultDataRoot(_ env: [String: String]) -> String { DefaultPaths.dataRoot(env) }

    public static func processEnvironment() -> [String: String] { DefaultPaths.environment() }

    public func validate() throws(ConfigError) {
        func require(_ ok: Bool, _ key: String, _ why: String) throws(ConfigError) {
            if !ok { throw ConfigError(message: "\(key): \(why)") }
        }
        try require(!socket.isEmpty && socket.utf8.count < 108, "socket", "must be a path shorter than 108 bytes")
        try require(!dataRoot.isEmpty, "data_root", "must not be empty")
        try require(maxFrameBytes >= 4096 && maxFrameBytes <= 64 << 20, "max_frame_bytes", "must be 4096 … 67108864")
        try require(writerQueueBytes >= 2 * maxFrameBytes, "writer_queue_bytes", "must be at least 2 × max_frame_bytes")
        try require(rotateBytes >= 4096, "rotate_bytes", "must be at least 4096")
        try require(keepLogSegments >= 0, "keep_log_segments", "must be 0 (keep all) or more")
        try require(ackIntervalMs >= 1 && ackIntervalMs <= 60_000, "ack_interval_ms", "must be 1 … 60000")
        try require(snapshotIntervalMs >= 10, "snapshot_interval_ms", "must be at least 10")
        try require(resumeGraceSeconds >= 0, "resume_grace_s", "must be 0 or more")
        try require(rankWaitSeconds >= 0 && rankWaitSeconds <= 86_400, "rank_wait_s", "must be 0 … 86400")
        try require(maxConnections >= 1 && maxConnections <= 1 << 20, "max_connections", "must be 1 … 1048576")
        try require(maxPartialFrameBytes >= maxFrameBytes, "max_partial_frame_bytes", "must be at least max_frame_bytes")
        try require(maxKeysPerRun >= 1, "max_keys_per_run", "must be at least 1")
        try require(maxKeyBytesPerRun >= 4096, "max_key_bytes_per_run", "must be at least 4096")
        try require(maxParamsBytesPerRun >= maxFrameBytes, "max_params_bytes_per_run", "must be at least max_frame_bytes")
        try require(maxKeysTotal >= maxKeysPerRun, "max_keys_total", "must be at least max_keys_per_run")
        try require(maxParamsBytesTotal >= maxParamsBytesPerRun, "max_params_bytes_total", "must be at least max_params_bytes_per_run")
        try require(maxPendingBarriers >= 1, "max_pending_barriers", "must be at least 1")
        try require(
            runDirectoryMode & ~0o777 == 0 && runDirectoryMode & 0o700 == 0o700, "run_directory_mode",
            "must be an octal mode 0700 … 0777 that gives the owner rwx")
        try require(snapshotIntervalMs <= 86_400_000, "snapshot_interval_ms", "must be at most 86400000")
        try require(resumeGraceSeconds <= 30 * 86_400, "resume_grace_s", "must be at most 2592000 (30 days)")
        try require(rotateBytes <= 1 << 40, "rotate_bytes", "must be at most 2^40")
        try require(writerQueueBytes <= 1 << 40, "writer_queue_bytes", "must be at most 2^40")
        try require(["debug", "info", "warning", "error"].contains(logLevel), "log_level", "must be debug, info, warning or error")
    }

    /// The body of a YAML double-quoted scalar: backslash, quote and every character YAML does not
    /// allow raw (C0, DEL, C1, line and paragraph separators, BOM) escaped, so `--print-config`
    /// loads back as the same strings whatever a path holds, and an error message stays one line.
    static func escaped(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _
            where u.value < 0x20 || u.value == 0x7F || (0x80..<0xA0).contains(u.value) || u.value == 0x2028 || u.value == 0x2029 || u.value == 0xFEFF:
                let hex = String(u.value, radix: 16)
                out +=
                    u.value <= 0xFF
                    ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                    : "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// Every key with its current value, in the config file's own format (`logd --print-config`).
    public func rendered() -> String {
        func q(_ s: String) -> String { "\"" + LogdConfig.escaped(s) + "\"" }
        return """
            # logd effective configuration
            socket: \(q(socket))
            socket_group: \(q(socketGroup))
            data_root: \(q(dataRoot))
            max_frame_bytes: \(maxFrameBytes)
            writer_queue_bytes: \(writerQueueBytes)
            rotate_bytes: \(rotateBytes)
            keep_log_segments: \(keepLogSegments)
            ack_interval_ms: \(ackIntervalMs)
            snapshot_interval_ms: \(snapshotIntervalMs)
            resume_grace_s: \(resumeGraceSeconds)
            rank_wait_s: \(rankWaitSeconds)
            max_connections: \(maxConnections)
            max_partial_frame_bytes: \(maxPartialFrameBytes)
            max_keys_per_run: \(maxKeysPerRun)
            max_key_bytes_per_run: \(maxKeyBytesPerRun)
            max_params_bytes_per_run: \(maxParamsBytesPerRun)
            max_keys_total: \(maxKeysTotal)
            max_params_bytes_total: \(maxParamsBytesTotal)
            max_pending_barriers: \(maxPendingBarriers)
            run_directory_mode: 0\(String(runDirectoryMode, radix: 8))
            log_level: \(q(logLevel))
            tensorboard: \(tensorboard)

            """
    }
}

/// A configuration problem, with the key, line and column when it comes from a file.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
    /// One line, whatever a value in the file held: control characters are escaped.
    public var description: String { LogdConfig.escaped(message) }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        let t = Array(target.utf8)
        var i = startIndex
        while i < endIndex {
            if self[i...].utf8.starts(with: t) {
                return i..<utf8.index(i, offsetBy: t.count)
            }
            i = index(after: i)
        }
        return nil
    }
}
