#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

// A run's outputs beyond its logs and metric rows: per-key summaries, artifacts, model versions
// and datasets — what summary.yaml, prov.json, run.yaml and models/<name>/model.yaml show, and
// what the checkpoint keeps so a restart continues them. Writer-confined, like RunFiles.
// docs/RUN_OUTPUTS.md describes every file.

/// The snapshot files of a run that need rewriting.
struct Snapshots: OptionSet {
    let rawValue: Int
    static let runYAML = Snapshots(rawValue: 1)
    static let config = Snapshots(rawValue: 2)
    static let summary = Snapshots(rawValue: 4)
    static let prov = Snapshots(rawValue: 8)
    static let models = Snapshots(rawValue: 16)
    static let all: Snapshots = [.runYAML, .config, .summary, .prov, .models]
}

struct SummaryKey: Hashable {
    var context: String
    var key: String
}

/// The running summary of one metric (context, key): the input of comparison tables.
/// NaN-aware: `min` and `max` ignore NaN samples (NaN here means "no number seen yet").
struct MetricSummary {
    static let maxSources = 16

    var context: String
    var key: String
    /// The sources the samples came from (at most `maxSources`).
    var sources: [String] = []
    var count: UInt64 = 0
    /// Step of the first and the last sample that had one (`WireProtocol.noStep`: none).
    var firstStep: Int64 = WireProtocol.noStep
    var lastStep: Int64 = WireProtocol.noStep
    var last: Double = .nan
    var min: Double = .nan
    var max: Double = .nan

    @inline(__always)
    mutating func add(_ value: Double, step: Int64) {
        count &+= 1
        if step != WireProtocol.noStep {
            if firstStep == WireProtocol.noStep { firstStep = step }
            lastStep = step
        }
        last = value
        if !value.isNaN {
            if min.isNaN || value < min { min = value }
            if max.isNaN || value > max { max = value }
        }
    }
}

/// One ARTIFACT or MODEL_VERSION of the run.
struct OutputEntry {
    enum State: String {
        /// Copy mode: the copy has not finished (or a restart interrupted it; see holes).
        case pending
        /// Copy mode: copied into the run directory; size and sha256 measured by logd.
        case copied
        /// Reference mode: path, size and digest as the client sent them.
        case recorded
        /// Copy mode: the copy failed (`error` says why).
        case failed
        /// Copy mode: the run ended before the interrupted copy was sent again.
        case incomplete
    }

    var session: SessionID
    var seq: UInt64
    /// The frame as received (`.artifact` or `.modelVersion`).
    var record: Record
    /// Where the copy lives, relative to the run directory (copy mode).
    var storedPath: String?
    /// Model versions: index into `models` and the version id (1, 2, …).
    var model = -1
    var version = 0
    var state: State
    var size: UInt64 = 0
    var sha256 = Digest256.zero
    var error: String?
    /// When the copy finished or the reference was recorded (ns since the epoch).
    var finishedAt: Int64 = 0
    /// The copy job running for it (0: none); not persisted.
    var job: UInt64 = 0

    var isModelVersion: Bool { if case .modelVersion = record { true } else { false } }

    var fields:
        (
            context: String, step: Int64, mode: ArtifactMode, fileName: String, originalPath: String, timestamp: Int64,
            clientSize: UInt64, clientSHA: Digest256
        )
    {
        switch record {
        case .artifact(let a): (a.context, a.step, a.mode, a.fileName, a.originalPath, a.timestamp, a.size, a.sha256)
        case .modelVersion(let m): (m.context, m.step, m.mode, m.fileName, m.originalPath, m.timestamp, m.size, m.sha256)
        default: ("", WireProtocol.noStep, .reference, "", "", 0, 0, .zero)
        }
    }

    var role: ArtifactRole {
        if case .artifact(let a) = record { return a.role }
        return .output
    }
}

/// A model of the run: its info (MODEL_INFO) and how many versions were saved.
struct ModelEntry {
    var name: String
    /// Its directory under `models/` (one safe, unique path component).
    var dir: String
    var info: ModelInfo?
    var versions = 0
}

/// A copy for the copier thread: `fd` (the client's) into `<dirfd>/<directories…>/<name>`.
struct CopyJob: Sendable {
    var id: UInt64
    var run: Int32
    /// A duplicate of the run directory's descriptor, owned by the job.
    var dirfd: Int32
    var directories: [String]
    var name: String
    var fd: Int32
}

/// What the copier reports back.
struct CopyResult: Sendable {
    var id: UInt64
    var run: Int32
    var size: UInt64
    var sha256: Digest256
    var error: String?
}

extension RunFiles {
    // MARK: summaries

    /// The summary slot of (context, key), created on first use; a metric key's writer-side
    /// info holds it so a sample updates its summary without a lookup.
    func summarySlot(context: String, key: String, source: String) -> Int {
        let k = SummaryKey(context: context, key: key)
        if let i = summaryIndex[k] {
            if !source.isEmpty, !summaries[i].sources.contains(source), summaries[i].sources.count < MetricSummary.maxSources {
                summaries[i].sources.append(source)
                stale.insert(.prov)
            }
            return i
        }
        summaries.append(MetricSummary(context: context, key: key, sources: source.isEmpty ? [] : [source]))
        summaryIndex[k] = summaries.count - 1
        stale.insert(.prov)
        return summaries.count - 1
    }

    // MARK: artifacts, models, datasets

    /// Records an ARTIFACT or MODEL_VERSION frame; returns the copy to start for a copy-mode one
    /// (`fd` is its descriptor). A frame resent after a restart interrupted its copy finds its
    /// entry (same session and frame number) and is copied into the place reserved for it.
    func receiveOutput(session: SessionID, seq: UInt64, _ record: Record, fd: PassedFD?, jobID: UInt64) -> CopyJob? {
        stale.formUnion([.runYAML, .prov])
        needsDurability = true
        if let i = outputs.firstIndex(where: { $0.session == session && $0.seq == seq }) {
            guard outputs[i].state == .pending, outputs[i].job == 0, let fd else { return nil }
            if outputs[i].isModelVersion { stale.insert(.models) }
            return startCopy(i, fd: fd, jobID: jobID)
        }
        var entry = OutputEntry(session: session, seq: seq, record: record, state: .recorded)
        switch record {
        case .artifact(let a):
            entry.size = a.size
            entry.sha256 = a.sha256
            if a.mode == .copy { entry.storedPath = "artifacts/" + uniqueArtifactName(a.fileName) }
        case .modelVersion(let m):
            let mi = modelIndex(m.modelName)
            models[mi].versions += 1
            entry.model = mi
            entry.version = models[mi].versions
            entry.size = m.size
            entry.sha256 = m.sha256
            if m.mode == .copy {
                entry.storedPath = "models/\(models[mi].dir)/v\(entry.version)/" + PathNames.component(m.fileName, fallback: "model")
            }
            stale.insert(.models)
        default:
            return nil
        }
        if entry.storedPath != nil {
            entry.state = .pending
            entry.size = 0
            entry.sha256 = .zero
        } else {
            entry.finishedAt = Posix.realtimeNanos()
        }
        outputs.append(entry)
        guard entry.state == .pending else { return nil }
        guard let fd else {
            outputs[outputs.count - 1].state = .failed
            outputs[outputs.count - 1].error = "no file descriptor came with the frame"
            return nil
        }
        return startCopy(outputs.count - 1, fd: fd, jobID: jobID)
    }

    private func startCopy(_ i: Int, fd: PassedFD, jobID: UInt64) -> CopyJob {
        var directories = outputs[i].storedPath!.split(separator: "/").map(String.init)
        let name = directories.removeLast()
        outputs[i].job = jobID
        activeCopies += 1
        return CopyJob(
            id: jobID, run: index, dirfd: fcntl(dirfd, F_DUPFD_CLOEXEC, 0), directories: directories, name: name, fd: fd.take())
    }

    /// The copier finished job `result.id` (copied, or failed).
    func finishCopy(_ result: CopyResult) {
        guard let i = outputs.firstIndex(where: { $0.job == result.id }) else { return }
        outputs[i].job = 0
        activeCopies -= 1
        if let error = result.error {
            outputs[i].state = .failed
            outputs[i].error = error
        } else {
            outputs[i].state = .copied
            outputs[i].size = result.size
            outputs[i].sha256 = result.sha256
        }
        outputs[i].finishedAt = Posix.realtimeNanos()
        stale.formUnion(outputs[i].isModelVersion ? [.runYAML, .prov, .models] : [.runYAML, .prov])
        needsDurability = true
    }

    /// At a run's final end, copies that a restart interrupted and nobody sent again.
    func abandonPendingCopies() {
        for i in outputs.indices where outputs[i].state == .pending && outputs[i].job == 0 {
            if let path = outputs[i].storedPath, let slash = path.lastIndex(of: "/") {
                // The interrupted copy's temp file (the copier writes `.<name>.part` beside it).
                unlinkat(dirfd, String(path[..<slash]) + "/." + String(path[path.index(after: slash)...]) + ".part", 0)
            }
            outputs[i].state = .incomplete
            outputs[i].error = "logd restarted during the copy and the producer did not send it again"
            stale.formUnion([.runYAML, .prov, .models])
        }
    }

    /// The highest frame number of `session` that may be acknowledged: below its oldest copy
    /// that has not finished.
    func ackLimit(_ session: SessionID) -> UInt64 {
        var limit = UInt64.max
        for e in outputs where e.state == .pending && e.session == session { limit = Swift.min(limit, e.seq - 1) }
        return limit
    }

    /// Frames to take again when resent after this restart: copies it interrupted.
    func holes() -> [SessionID: Set<UInt64>] {
        var out: [SessionID: Set<UInt64>] = [:]
        for e in outputs where e.state == .pending { out[e.session, default: []].insert(e.seq) }
        return out
    }

    func setModelInfo(_ info: ModelInfo) {
        models[modelIndex(info.name)].info = info
        stale.formUnion([.runYAML, .prov, .models])
        needsDurability = true
    }

    /// A DATASET replaces an earlier one with the same label and context.
    func addDataset(_ d: DatasetInfo) {
        if let i = datasets.firstIndex(where: { $0.label == d.label && $0.context == d.context }) {
            datasets[i] = d
        } else {
            datasets.append(d)
        }
        stale.formUnion([.runYAML, .prov])
        needsDurability = true
    }

    private func modelIndex(_ name: String) -> Int {
        if let i = models.firstIndex(where: { $0.name == name }) { return i }
        let dir = uniqueName(PathNames.component(name, fallback: "model"), in: &usedModelDirs)
        models.append(ModelEntry(name: name, dir: dir))
        return models.count - 1
    }

    /// A client's artifact name, as a path below `artifacts/`: `/` separates folders (SummaryWriter
    /// images land in `images/<tag>/<step>.png`), each part made one safe component (no `..`, no
    /// hidden names), at most 8 levels; empty parts are skipped.
    private func uniqueArtifactName(_ fileName: String) -> String {
        let parts = fileName.split(separator: "/").filter { !$0.isEmpty }.prefix(8).map { PathNames.component(String($0), fallback: "_") }
        let path = parts.isEmpty ? "artifact" : parts.joined(separator: "/")
        return uniqueName(path, in: &usedArtifactNames)
    }

    /// `name`, or `stem_2.ext`, `stem_3.ext`, … when taken (the suffix goes on the last part of a path).
    private func uniqueName(_ name: String, in used: inout Set<String>) -> String {
        var candidate = name
        var n = 1
        let last = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        while used.contains(candidate) {
            n += 1
            if let dot = name[last...].lastIndex(of: "."), dot != last {
                candidate = String(name[..<dot]) + "_\(n)" + String(name[dot...])
            } else {
                candidate = name + "_\(n)"
            }
        }
        used.insert(candidate)
        return candidate
    }

    /// The user the run belongs to: the first producer's (kernel-reported) uid, by name.
    func runUser(fallback: String) -> String {
        guard let uid = producers.first?.info.uid else { return fallback }
        if let name = userNames[uid] { return name }
        let name = Writer.userName(uid)
        userNames[uid] = name
        return name
    }

    // MARK: checkpoint

    private static func frameHex(_ record: Record) -> Value {
        .string(hexString((try? FrameEncoder(limits: RunFiles.checkpointLimits).frame(record)) ?? []))
    }

    private static func record(fromHex v: Value?) -> Record? {
        guard case .string(let hex)? = v, let bytes = hexBytes(hex) else { return nil }
        return try? FrameDecoder(limits: RunFiles.checkpointLimits).decodeAll(bytes).first
    }

    private static func step(_ s: Int64) -> Value { s == WireProtocol.noStep ? .null : .int(s) }

    /// The outputs' part of the checkpoint (merged into its state map).
    func outputsCheckpoint() -> Value {
        [
            "summaries": .list(
                summaries.map { s in
                    [
                        .string(s.context), .string(s.key), .list(s.sources.map(Value.string)), .int(Int64(clamping: s.count)),
                        RunFiles.step(s.firstStep), RunFiles.step(s.lastStep), .double(s.last), .double(s.min), .double(s.max),
                    ]
                }),
            "outputs": .list(
                outputs.map { e in
                    [
                        "frame": RunFiles.frameHex(e.record), "session": .string(e.session.description), "seq": .int(Int64(e.seq)),
                        "path": e.storedPath.map(Value.string) ?? .null, "model": .int(Int64(e.model)),
                        "version": .int(Int64(e.version)), "state": .string(e.state.rawValue),
                        "size": .int(Int64(clamping: e.size)), "sha256": .string(e.sha256.description),
                        "error": e.error.map(Value.string) ?? .null, "finished": .int(e.finishedAt),
                    ]
                }),
            "models": .list(
                models.map { m in
                    [
                        "name": .string(m.name), "dir": .string(m.dir), "versions": .int(Int64(m.versions)),
                        "info": m.info.map { RunFiles.frameHex(.modelInfo($0)) } ?? .null,
                    ]
                }),
            "datasets": .list(datasets.map { RunFiles.frameHex(.dataset($0)) }),
        ]
    }

    /// Restores the outputs from a checkpoint's state map (a restart).
    func restoreOutputs(from state: Value) {
        func int(_ v: Value?) -> Int64 { if case .int(let i)? = v { i } else { 0 } }
        func str(_ v: Value?) -> String? { if case .string(let s)? = v { s } else { nil } }
        func dbl(_ v: Value?) -> Double { if case .double(let d)? = v { d } else { .nan } }
        func step(_ v: Value?) -> Int64 { if case .int(let i)? = v { i } else { WireProtocol.noStep } }
        if case .list(let list)? = state["summaries"] {
            for item in list {
                guard case .list(let f) = item, f.count == 9, case .string(let context) = f[0], case .string(let key) = f[1],
                    case .list(let sources) = f[2]
                else { continue }
                var s = MetricSummary(context: context, key: key)
                s.sources = sources.compactMap { if case .string(let x) = $0 { x } else { nil } }
                s.count = UInt64(max(0, int(f[3])))
                s.firstStep = step(f[4])
                s.lastStep = step(f[5])
                s.last = dbl(f[6])
                s.min = dbl(f[7])
                s.max = dbl(f[8])
                summaryIndex[SummaryKey(context: context, key: key)] = summaries.count
                summaries.append(s)
            }
        }
        if case .list(let list)? = state["models"] {
            for m in list {
                guard let name = str(m["name"]), let dir = str(m["dir"]) else { continue }
                var entry = ModelEntry(name: name, dir: dir)
                entry.versions = Int(int(m["versions"]))
                if case .modelInfo(let info)? = RunFiles.record(fromHex: m["info"]) { entry.info = info }
                models.append(entry)
                usedModelDirs.insert(dir)
            }
        }
        if case .list(let list)? = state["outputs"] {
            for o in list {
                guard let record = RunFiles.record(fromHex: o["frame"]), let sessionHex = str(o["session"]),
                    let session = SessionID(hex: sessionHex), let state = str(o["state"]).flatMap(OutputEntry.State.init)
                else { continue }
                var e = OutputEntry(session: session, seq: UInt64(max(0, int(o["seq"]))), record: record, state: state)
                e.storedPath = str(o["path"])
                e.model = Int(int(o["model"]))
                e.version = Int(int(o["version"]))
                e.size = UInt64(max(0, int(o["size"])))
                if let hex = str(o["sha256"]), let bytes = hexBytes(hex), bytes.count == 32 { e.sha256 = Digest256(bytes: bytes) }
                e.error = str(o["error"])
                e.finishedAt = int(o["finished"])
                if let path = e.storedPath, path.hasPrefix("artifacts/") { usedArtifactNames.insert(String(path.dropFirst(10))) }
                outputs.append(e)
            }
        }
        if case .list(let list)? = state["datasets"] {
            for d in list { if case .dataset(let info)? = RunFiles.record(fromHex: d) { datasets.append(info) } }
        }
        summaryWrittenAt = .max
        stale = .all
    }

    // MARK: rendering

    private static func stepValue(_ s: Int64) -> Value { s == WireProtocol.noStep ? .null : .int(s) }
    private static func digestValue(_ d: Digest256) -> Value { d.isZero ? .null : .string(d.description) }
    private static func timeValue(_ t: Int64) -> Value { t == 0 ? .null : .string(ISOTimeFormatter.string(t)) }

    /// One artifact or model version as run.yaml and model.yaml show it.
    func outputValue(_ e: OutputEntry) -> Value {
        let f = e.fields
        var fields: [(key: String, value: Value)] = []
        if e.isModelVersion {
            fields.append((key: "version", value: .int(Int64(e.version))))
        } else {
            fields.append((key: "role", value: .string(e.role.name)))
        }
        fields += [
            (key: "file_name", value: .string(f.fileName)),
            (key: "path", value: e.storedPath.map(Value.string) ?? .null),
            (key: "original_path", value: .string(f.originalPath)),
            (key: "mode", value: .string(f.mode.name)),
            (key: "status", value: .string(e.state.rawValue)),
            (key: "context", value: .string(f.context)),
            (key: "step", value: RunFiles.stepValue(f.step)),
            (key: "size", value: e.state == .pending ? .null : .int(Int64(clamping: e.size))),
            (key: "sha256", value: RunFiles.digestValue(e.sha256)),
            (key: "time", value: RunFiles.timeValue(f.timestamp)),
        ]
        if e.state == .copied, !f.clientSHA.isZero {
            fields.append((key: "matches_client_sha256", value: .bool(f.clientSHA == e.sha256)))
        }
        if let error = e.error { fields.append((key: "error", value: .string(error))) }
        return .map(fields)
    }

    func datasetValue(_ d: DatasetInfo) -> Value {
        [
            "label": .string(d.label), "context": .string(d.context), "samples": .int(Int64(clamping: d.samples)),
            "batch_size": .int(Int64(d.batchSize)), "workers": .int(Int64(d.workers)), "shuffle": .bool(d.shuffle),
            "batches": .int(Int64(clamping: d.batches)),
        ]
    }

    private func modelValue(_ mi: Int, layers: Bool) -> Value {
        let m = models[mi]
        var fields: [(key: String, value: Value)] = [
            (key: "name", value: .string(m.name)),
            (key: "directory", value: .string("models/" + m.dir)),
            (key: "parameter_count", value: m.info.map { .int(Int64(clamping: $0.parameterCount)) } ?? .null),
            (key: "memory_bytes", value: m.info.map { .int(Int64(clamping: $0.memoryBytes)) } ?? .null),
        ]
        if layers { fields.append((key: "layers", value: m.info?.layers ?? .list([]))) }
        fields.append((key: "versions", value: .list(outputs.filter { $0.model == mi }.map(outputValue))))
        return .map(fields)
    }

    /// run.yaml's `artifacts`, `models` and `datasets`.
    func outputsForRunYAML() -> Value {
        [
            "artifacts": .list(outputs.filter { !$0.isModelVersion }.map(outputValue)),
            "models": .list(models.indices.map { modelValue($0, layers: false) }),
            "datasets": .list(datasets.map(datasetValue)),
        ]
    }

    /// summary.yaml: per context, per key: count, first_step, last_step, last, min, max.
    /// summary.yaml. When every context and key is a plain YAML word (the usual case) the text
    /// is assembled from per-key fragments, re-rendered only for keys whose count moved, so a
    /// rewrite costs in proportion to what changed (callgrind: libyaml over the whole tree was
    /// ~50,000 instructions per key per rewrite, at 10,000 keys once a second). Otherwise libyaml
    /// renders the whole document. `SummaryYAMLTests` holds the two byte-identical.
    func summaryYAML() -> [UInt8] {
        guard summaries.allSatisfy({ YAMLEmitter.isPlainSafe($0.context) && YAMLEmitter.isPlainSafe($0.key) }) else {
            return summaryYAMLTree()
        }
        if summaryFragments.count != summaries.count {
            summaryFragments += repeatElement([], count: summaries.count - min(summaries.count, summaryFragments.count))
            summaryFragmentCounts += repeatElement(.max, count: summaries.count - min(summaries.count, summaryFragmentCounts.count))
        }
        var order: [[Int]] = []
        var contextNames: [String] = []
        var position: [String: Int] = [:]
        for (i, s) in summaries.enumerated() {
            if let c = position[s.context] {
                order[c].append(i)
            } else {
                position[s.context] = contextNames.count
                contextNames.append(s.context)
                order.append([i])
            }
            if summaryFragmentCounts[i] != s.count || summaryFragments[i].isEmpty {
                summaryFragments[i] = RunFiles.summaryFragment(s)
                summaryFragmentCounts[i] = s.count
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(64 + summaryFragments.reduce(0) { $0 + $1.count } + contextNames.count * 32)
        // `---` and the run id as libyaml writes them (a run id may need quoting).
        out.append(contentsOf: YAMLEmitter.render(["run_id": .string(runID)]))
        out.append(contentsOf: "metric_samples: \(Int64(clamping: metricCount))\nmetrics:".utf8)
        if contextNames.isEmpty {
            out.append(contentsOf: " {}\n".utf8)
            return out
        }
        out.append(0x0A)
        for (c, name) in contextNames.enumerated() {
            out.append(contentsOf: "  \(name):\n".utf8)
            for i in order[c] { out.append(contentsOf: summaryFragments[i]) }
        }
        return out
    }

    /// One key's lines of summary.yaml (its name plain-safe).
    private static func summaryFragment(_ s: MetricSummary) -> [UInt8] {
        func step(_ v: Int64) -> String { v == WireProtocol.noStep ? "null" : String(v) }
        func double(_ d: Double) -> String { d.isNaN ? "null" : YAMLEmitter.doubleText(d) }
        let last = s.count == 0 ? "null" : YAMLEmitter.doubleText(s.last)
        return Array(
            """
                \(s.key):
                  count: \(Int64(clamping: s.count))
                  first_step: \(step(s.firstStep))
                  last_step: \(step(s.lastStep))
                  last: \(last)
                  min: \(double(s.min))
                  max: \(double(s.max))

            """.utf8)
    }

    /// summary.yaml through libyaml, for names that need quoting.
    func summaryYAMLTree() -> [UInt8] {
        // Keys are gathered per context in plain arrays and wrapped once at the end: building the
        // map in place copied a context's whole key list for every key (O(K²) at 10,000 keys).
        var contextNames: [String] = []
        var keysByContext: [[(key: String, value: Value)]] = []
        var position: [String: Int] = [:]
        for s in summaries {
            let stats: Value = [
                "count": .int(Int64(clamping: s.count)),
                "first_step": RunFiles.stepValue(s.firstStep), "last_step": RunFiles.stepValue(s.lastStep),
                "last": s.count == 0 ? .null : .double(s.last),
                "min": s.min.isNaN ? .null : .double(s.min), "max": s.max.isNaN ? .null : .double(s.max),
            ]
            if let i = position[s.context] {
                keysByContext[i].append((key: s.key, value: stats))
            } else {
                position[s.context] = contextNames.count
                contextNames.append(s.context)
                keysByContext.append([(key: s.key, value: stats)])
            }
        }
        let contexts = zip(contextNames, keysByContext).map { (key: $0.0, value: Value.map($0.1)) }
        let doc: Value = [
            "run_id": .string(runID),
            "metric_samples": .int(Int64(clamping: metricCount)),
            "metrics": .map(contexts),
        ]
        return YAMLEmitter.render(doc)
    }

    /// models/<dir>/model.yaml for every model: its info, layers and versions.
    func writeModelFiles(sync: Bool = true) throws(SystemError) {
        guard !models.isEmpty else { return }
        let modelsfd = try Posix.makeDirectory(dirfd, "models")
        defer { close(modelsfd) }
        for mi in models.indices {
            let fd = try Posix.makeDirectory(modelsfd, models[mi].dir)
            defer { close(fd) }
            try Posix.replaceFile(fd, "model.yaml", YAMLEmitter.render(modelValue(mi, layers: true)), sync: sync)
        }
    }

    /// Removes temp files an interrupted snapshot rewrite left (a crash between write and rename).
    func removeSnapshotTemps() {
        for name in ["run.yaml", "config.yaml", "config_tree.txt", "summary.yaml", "prov.json", RunFiles.checkpointName] {
            unlinkat(dirfd, ".\(name).tmp", 0)
        }
    }
}

/// config_tree.txt: the params tree for people, one `key: value` line per leaf, nested keys
/// indented by two spaces, list items as `- value`. Strings that are plain words stand as they
/// are; any other string is written as a JSON string (quotes, escapes), so every leaf is one line.
enum ConfigTree {
    static func render(_ value: Value) -> [UInt8] {
        var out = ""
        if case .map(let entries) = value, entries.isEmpty {
            out = "(no params)\n"
        } else {
            write(value, indent: 0, into: &out)
        }
        return Array(out.utf8)
    }

    static func scalarText(_ v: Value) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): YAMLEmitter.doubleText(d)
        case .string(let s): YAMLEmitter.isPlainSafe(s) ? s : Value.string(s).jsonText()
        case .list(let l): l.isEmpty ? "[]" : ""
        case .map(let m): m.isEmpty ? "{}" : ""
        }
    }

    private static func isContainer(_ v: Value) -> Bool {
        switch v {
        case .list(let l): !l.isEmpty
        case .map(let m): !m.isEmpty
        default: false
        }
    }

    private static func write(_ value: Value, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case .map(let entries) where !entries.isEmpty:
            for (key, item) in entries {
                let k = YAMLEmitter.isPlainSafe(key) ? key : Value.string(key).jsonText()
                if isContainer(item) {
                    out += pad + k + ":\n"
                    write(item, indent: indent + 2, into: &out)
                } else {
                    out += pad + k + ": " + scalarText(item) + "\n"
                }
            }
        case .list(let items) where !items.isEmpty:
            for item in items {
                if isContainer(item) {
                    out += pad + "-\n"
                    write(item, indent: indent + 2, into: &out)
                } else {
                    out += pad + "- " + scalarText(item) + "\n"
                }
            }
        default:
            out += pad + scalarText(value) + "\n"
        }
    }
}

extension Value {
    /// The tree with every map's keys unique: a repeated key merges into its first occurrence
    /// by the params rule (later wins), so config.yaml never repeats a key. Linear time.
    func uniqueKeys() -> Value {
        switch self {
        case .map(let entries):
            return Value.map([]).mergedParams(.map(entries.map { (key: $0.key, value: $0.value.uniqueKeys()) }))
        case .list(let items):
            return .list(items.map { $0.uniqueKeys() })
        default:
            return self
        }
    }

    /// `Value.merging` (maps merge key by key, recursively; anything else replaces), in linear
    /// time for trees whose maps have unique keys: later params override earlier ones at the
    /// same key path, new keys keep the order they arrive in.
    func mergedParams(_ other: Value) -> Value {
        guard case .map(var mine) = self, case .map(let theirs) = other else { return other }
        var index: [String: Int] = [:]
        index.reserveCapacity(mine.count + theirs.count)
        for (i, entry) in mine.enumerated() { index[entry.key] = i }
        for (key, value) in theirs {
            if let i = index[key] {
                mine[i].value = mine[i].value.mergedParams(value)
            } else {
                index[key] = mine.count
                mine.append((key: key, value: value))
            }
        }
        return .map(mine)
    }
}
