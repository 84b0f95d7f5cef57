extension Record {
    /// The record as a value tree with snake_case field names: what golden vectors' JSON
    /// holds, what logs and tools print. Session ids and digests are hex strings.
    public var described: Value {
        var fields: [(key: String, value: Value)] = []
        func put(_ key: String, _ value: Value) { fields.append((key: key, value: value)) }
        func u(_ v: some BinaryInteger) -> Value { .int(Int64(clamping: v)) }
        func strings(_ list: [String]) -> Value { .list(list.map(Value.string)) }
        func metric(_ m: Metric) -> Value {
            ["key_id": u(m.keyID), "step": .int(m.step), "timestamp": .int(m.timestamp), "value": .double(m.value)]
        }
        put("kind", .string(FrameKind(rawValue: kind)?.name ?? "unknown"))
        switch self {
        case .hello(let h):
            put("major", u(h.major))
            put("minor", u(h.minor))
            put("role", .string(h.role == .producer ? "producer" : "control"))
            put("pid", u(h.pid))
            put("session", .string(h.session.description))
            put("first_seq", u(h.firstSeq))
            put("client_name", .string(h.clientName))
            put("client_version", .string(h.clientVersion))
        case .welcome(let w):
            put("major", u(w.major))
            put("minor", u(w.minor))
            put("durable_through", u(w.durableThrough))
            put("max_frame_bytes", u(w.maxFrameBytes))
            put("daemon_version", .string(w.daemonVersion))
        case .ack(let n):
            put("durable_through", u(n))
        case .flush(let token):
            put("token", u(token))
        case .flushDone(let f):
            put("token", u(f.token))
            put("status", .string(f.status.name))
            put("durable_through", u(f.durableThrough))
        case .error(let e):
            put("code", u(e.code.rawValue))
            put("message", .string(e.message))
        case .metricKey(let k):
            put("id", u(k.id))
            put("key", .string(k.key))
            put("context", .string(k.context))
            put("source", .string(k.source))
        case .controlRequest(let r):
            put("request_id", u(r.requestID))
            put("verb", .string(ControlVerb(rawValue: r.verb)?.name ?? "verb_\(r.verb)"))
            put("arguments", r.arguments)
        case .controlReply(let r):
            put("request_id", u(r.requestID))
            put("status", .string(r.status.name))
            put("body", r.body)
        case .runStart(let r):
            put("run_id", .string(r.runID))
            put("experiment", .string(r.experiment))
            put("name", .string(r.name))
            put("tags", strings(r.tags))
            put("rank", u(r.rank))
            put("local_rank", u(r.localRank))
            put("world_size", u(r.worldSize))
            put("host", .string(r.host))
            put("command_line", strings(r.commandLine))
            put("working_directory", .string(r.workingDirectory))
            put("git_commit", .string(r.gitCommit))
            put("git_dirty", .string(r.gitDirty.name))
            put("seed", r.seed.map(Value.int) ?? .null)
            put("start_time", .int(r.startTime))
        case .params(let v):
            put("params", v)
        case .metric(let m):
            guard case .map(let entries) = metric(m) else { break }
            fields += entries
        case .metricBatch(let ms):
            put("metrics", .list(ms.map(metric)))
        case .log(let l):
            put("level", .string(l.level.name))
            put("timestamp", .int(l.timestamp))
            put("logger", .string(l.logger))
            put("message", .string(l.message))
        case .artifact(let a):
            put("context", .string(a.context))
            put("step", .int(a.step))
            put("role", .string(a.role.name))
            put("mode", .string(a.mode.name))
            put("file_name", .string(a.fileName))
            put("original_path", .string(a.originalPath))
            put("size", u(a.size))
            put("sha256", .string(a.sha256.description))
            put("timestamp", .int(a.timestamp))
        case .modelInfo(let m):
            put("name", .string(m.name))
            put("parameter_count", u(m.parameterCount))
            put("memory_bytes", u(m.memoryBytes))
            put("layers", m.layers)
        case .modelVersion(let m):
            put("model_name", .string(m.modelName))
            put("context", .string(m.context))
            put("step", .int(m.step))
            put("mode", .string(m.mode.name))
            put("file_name", .string(m.fileName))
            put("original_path", .string(m.originalPath))
            put("size", u(m.size))
            put("sha256", .string(m.sha256.description))
            put("timestamp", .int(m.timestamp))
        case .dataset(let d):
            put("label", .string(d.label))
            put("context", .string(d.context))
            put("samples", u(d.samples))
            put("batch_size", u(d.batchSize))
            put("workers", u(d.workers))
            put("shuffle", .bool(d.shuffle))
            put("batches", u(d.batches))
        case .runEnd(let e):
            put("status", .string(e.status.name))
            put("timestamp", .int(e.timestamp))
        case .drops(let total):
            put("total", u(total))
        case .unknown(let kind, let n):
            put("raw_kind", u(kind))
            put("body_bytes", u(n))
        }
        return .map(fields)
    }
}
