import CYAML
import LogdSystem

extension LogdConfig {
    /// Applies a YAML config file's keys over `self`. The file is one mapping of scalars;
    /// every error names the key, line and column; unknown keys are refused.
    public mutating func apply(yaml text: String, fileName: String) throws(ConfigError) {
        let entries = try YAMLScalarMap.parse(text, fileName: fileName)
        var queueSet = false
        for e in entries {
            let at = "\(fileName):\(e.line):\(e.column)"
            func int() throws(ConfigError) -> Int {
                guard !e.quoted, let v = Int(e.value.replacingAll("_", with: "")) else {
                    throw ConfigError(message: "\(at): \(e.key): expected an integer, got '\(e.value)'")
                }
                return v
            }
            func string() -> String { e.value }
            switch e.key {
            case "socket": socket = string()
            case "socket_group": socketGroup = string()
            case "data_root": dataRoot = string()
            case "max_frame_bytes": maxFrameBytes = try int()
            case "writer_queue_bytes":
                writerQueueBytes = try int()
                queueSet = true
            case "rotate_bytes": rotateBytes = try int()
            case "keep_log_segments": keepLogSegments = try int()
            case "ack_interval_ms": ackIntervalMs = try int()
            case "snapshot_interval_ms": snapshotIntervalMs = try int()
            case "resume_grace_s": resumeGraceSeconds = try int()
            case "rank_wait_s": rankWaitSeconds = try int()
            case "max_connections": maxConnections = try int()
            case "max_partial_frame_bytes": maxPartialFrameBytes = try int()
            case "max_keys_per_run": maxKeysPerRun = try int()
            case "max_key_bytes_per_run": maxKeyBytesPerRun = try int()
            case "max_params_bytes_per_run": maxParamsBytesPerRun = try int()
            case "max_keys_total": maxKeysTotal = try int()
            case "max_params_bytes_total": maxParamsBytesTotal = try int()
            case "max_pending_barriers": maxPendingBarriers = try int()
            case "run_directory_mode":
                // An octal mode: 0750, 750 or 0o750 (YAML 1.1 would read 0750 as octal too).
                var digits = e.value.hasPrefix("0o") ? String(e.value.dropFirst(2)) : e.value
                if digits.count > 1, digits.hasPrefix("0") { digits = String(digits.dropFirst()) }
                guard !e.quoted, let v = Int(digits, radix: 8) else {
                    throw ConfigError(message: "\(at): run_directory_mode: expected an octal mode such as 0750, got '\(e.value)'")
                }
                runDirectoryMode = v
            case "log_level": logLevel = string()
            case "tensorboard":
                switch e.quoted ? "" : e.value.lowercased() {
                case "true", "yes", "on": tensorboard = true
                case "false", "no", "off": tensorboard = false
                default: throw ConfigError(message: "\(at): tensorboard: expected true or false, got '\(e.value)'")
                }
            // `forward:` (MLflow forwarding) is a nested section, read by LogdForward; empty here.
            case "forward": break
            default:
                throw ConfigError(message: "\(at): unknown key '\(e.key)'")
            }
        }
        // Unless set, the queue bound grows with max_frame_bytes (at least two frames fit).
        // (Saturating: an out-of-range max_frame_bytes is refused by `validate` with its own message.)
        if !queueSet {
            let twoFrames = maxFrameBytes.multipliedReportingOverflow(by: 2)
            writerQueueBytes = max(writerQueueBytes, twoFrames.overflow ? .max : twoFrames.partialValue)
        }
        do { try validate() } catch { throw ConfigError(message: "\(fileName): \(error.message)") }
    }
}

/// A YAML document that is one flat mapping of scalar keys to scalar values, read with libyaml.
struct YAMLScalarMap {
    struct Entry {
        var key: String
        var value: String
        /// The value was quoted in the file (so it is a string, never a number).
        var quoted: Bool
        var line: Int
        var column: Int
    }

    static func parse(_ text: String, fileName: String) throws(ConfigError) -> [Entry] {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw ConfigError(message: "\(fileName): libyaml init failed") }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buf throws(ConfigError) -> [Entry] in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            var entries: [Entry] = []
            var depth = 0
            var pendingKey: Entry?
            var seen = Set<String>()
            // Events inside the nested `forward:` section, skipped (LogdForward reads it).
            var skipping = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    throw ConfigError(
                        message: "\(fileName):\(parser.problem_mark.line + 1):\(parser.problem_mark.column + 1): \(problem)")
                }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
                let at = "\(fileName):\(line):\(column)"
                if skipping > 0 {
                    if event.type == YAML_MAPPING_START_EVENT || event.type == YAML_SEQUENCE_START_EVENT { skipping += 1 }
                    if event.type == YAML_MAPPING_END_EVENT || event.type == YAML_SEQUENCE_END_EVENT { skipping -= 1 }
                    continue
                }
                if depth == 1, pendingKey?.key == "forward",
                    event.type == YAML_MAPPING_START_EVENT || event.type == YAML_SEQUENCE_START_EVENT
                {
                    skipping = 1
                    pendingKey = nil
                    continue
                }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return entries
                case YAML_MAPPING_START_EVENT:
                    if event.data.mapping_start.anchor != nil {
                        throw ConfigError(message: "\(at): anchors are not allowed in a config file")
                    }
                    depth += 1
                    if depth > 1 {
                        let key = pendingKey?.key ?? "?"
                        throw ConfigError(message: "\(at): \(key): expected a single value, got a mapping")
                    }
                case YAML_MAPPING_END_EVENT:
                    depth -= 1
                case YAML_SEQUENCE_START_EVENT:
                    let key = pendingKey?.key ?? "?"
                    throw ConfigError(message: "\(at): \(key): expected a single value, got a list")
                case YAML_ALIAS_EVENT:
                    throw ConfigError(message: "\(at): aliases are not allowed in a config file")
                case YAML_SCALAR_EVENT:
                    let s = event.data.scalar
                    if s.anchor != nil { throw ConfigError(message: "\(at): anchors are not allowed in a config file") }
                    let value = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                    if depth == 0 {
                        if value.isEmpty { continue }  // an empty document
                        throw ConfigError(message: "\(at): expected a mapping of keys to values")
                    }
                    if var key = pendingKey {
                        key.value = value
                        key.quoted = s.style != YAML_PLAIN_SCALAR_STYLE
                        entries.append(key)
                        pendingKey = nil
                    } else {
                        guard seen.insert(value).inserted else {
                            throw ConfigError(message: "\(at): key '\(value)' appears twice")
                        }
                        pendingKey = Entry(key: value, value: "", quoted: false, line: line, column: column)
                    }
                default:
                    break
                }
            }
        }
    }
}
