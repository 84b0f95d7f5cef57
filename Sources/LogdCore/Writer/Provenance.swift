#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// prov.json: a run as a W3C PROV-JSON document in yProv4ML's shape, so yProv4ML's own readers
/// (`yprov4ml.utils.getters`: `list_metrics`, `list_metric_paths`, `get_parameter`,
/// `list_entities`, …) read it: its `provml`, `yprov` and `dcterms` prefixes, its record types as
/// plain strings (`"prov:type": "provml:Metric"`), ids `<label>//<context>` in the document's
/// default namespace, a root activity for the run, an activity per context informed by it, an
/// activity per rank (DDP ranks of one run in one document), hyperparameters used by the run,
/// metric entities that point at the metric file through `dcterms:identifier` (never the
/// samples: a run of 10 million samples has the same prov.json as one of ten), artifacts and
/// model versions derived from their originals, data sets used by their context, the user as
/// agent. logd's own attributes (`logd:…`) sit beside yProv4ML's. docs/RUN_OUTPUTS.md lists
/// every record. Writer-confined.
///
/// Ids use `[A-Za-z0-9._/-]` and the `//` separator only (other characters become `_`, repeats
/// get `_2`, `_3`, …), so the document reads back without warnings; the exact client strings
/// are in `prov:label`. Typed values are `{"$": text, "type": "xsd:…"}`, with non-finite
/// doubles as `NaN`, `INF`, `-INF`.
enum Provenance {
    static let xsd = "http://www.w3.org/2001/XMLSchema#"
    static let prov = "http://www.w3.org/ns/prov#"
    /// yProv4ML's record types (`provml:Metric`, …). yProv4ML declares it as the relative
    /// reference `prov-ml`; an absolute IRI keeps the document valid RDF. Readers compare the
    /// prefixed strings, which are the same.
    static let provml = "https://github.com/HPCI-Lab/yProv4ML/prov-ml#"
    /// yProv4ML's attribute names (`yprov:context`, `yprov:source`, …), its own IRI.
    static let yprov = "https://github.com/HPCI-Lab/yProv4ML"
    static let dcterms = "http://purl.org/dc/terms/"
    /// logd's attribute names.
    static let logd = "urn:logd:ns#"
    /// Most hyperparameter entities one document holds (the rest are counted, not listed).
    static let maxParamEntities = 4096

    static func document(for run: RunFiles, user: String) -> [UInt8] {
        var b = Builder(run: run, user: user, absoluteDirectory: absoluteDirectory(of: run))
        b.build()
        return b.document().jsonBytes(pretty: true)
    }

    /// The run directory's absolute path, read from the open directory descriptor (so it is
    /// right whatever the data root was called), else the path relative to the data root.
    static func absoluteDirectory(of run: RunFiles) -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/fd/\(run.dirfd)", &buffer, 4096)
        guard n > 0, buffer[0] == 0x2F else { return run.directory }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: typed values

    static func qname(_ q: String) -> Value { ["$": .string(q), "type": "xsd:QName"] }
    static func long(_ i: Int64) -> Value { ["$": .string(String(i)), "type": "xsd:long"] }
    static func long(_ u: UInt64) -> Value { long(Int64(clamping: u)) }
    static func bool(_ b: Bool) -> Value { ["$": .string(b ? "true" : "false"), "type": "xsd:boolean"] }
    static func dateTime(_ nanos: Int64) -> Value { ["$": .string(ISOTimeFormatter.string(nanos)), "type": "xsd:dateTime"] }

    static func double(_ d: Double) -> Value {
        let text: String =
            if d.isNaN { "NaN" } else if d.isInfinite { d < 0 ? "-INF" : "INF" } else { d.description }
        return ["$": .string(text), "type": "xsd:double"]
    }

    /// A hyperparameter's value as a PROV literal.
    static func literal(_ v: Value) -> Value? {
        switch v {
        case .null: nil
        case .bool(let b): bool(b)
        case .int(let i): long(i)
        case .double(let d): double(d)
        case .string(let s): .string(s)
        case .list(let l): l.isEmpty ? .string("[]") : nil
        case .map(let m): m.isEmpty ? .string("{}") : nil
        }
    }

    /// An IRI-safe form of a client string: unreserved characters stay, others are %-encoded.
    static func iriSegment(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let ok =
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E
                || b == 0x5F
            if ok {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let h = String(b, radix: 16, uppercase: true)
                out += "%" + (h.count == 1 ? "0" + h : h)
            }
        }
        return out.isEmpty ? "run" : out
    }

    /// A part of an id: `[A-Za-z0-9._/-]`, no empty `/` segment, nothing PROV-N escapes at
    /// either end, at most 120 bytes.
    static func idPart(_ name: String) -> String {
        var bytes: [UInt8] = []
        for b in name.utf8 {
            let ok =
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F
                || b == 0x2D || b == 0x2F
            let c = ok ? b : 0x5F
            if c == 0x2F, bytes.isEmpty || bytes.last == 0x2F { bytes.append(0x5F) }
            bytes.append(c)
            if bytes.count >= 120 { break }
        }
        if bytes.isEmpty || bytes[0] == 0x2D || bytes[0] == 0x2E { bytes.insert(0x5F, at: 0) }
        if bytes.last == 0x2F || bytes.last == 0x2E { bytes.append(0x5F) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An attribute name's local part: `[A-Za-z0-9._-]`, starting with a letter or `_`.
    static func attributePart(_ name: String) -> String {
        var bytes: [UInt8] = []
        for b in name.utf8 {
            let ok =
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D
                || b == 0x2E
            bytes.append(ok ? b : 0x5F)
            if bytes.count >= 120 { break }
        }
        if bytes.isEmpty || !((bytes[0] >= 0x41 && bytes[0] <= 0x5A) || (bytes[0] >= 0x61 && bytes[0] <= 0x7A) || bytes[0] == 0x5F) {
            bytes.insert(0x5F, at: 0)
        }
        if bytes.last == 0x2E { bytes.append(0x5F) }
        return String(decoding: bytes, as: UTF8.self)
    }

    typealias Attributes = [(key: String, value: Value)]

    struct Builder {
        let run: RunFiles
        let user: String
        /// The run directory's absolute path: what `dcterms:identifier` paths start with.
        let absoluteDirectory: String
        /// Record groups in document order: kind → [(id, attributes)].
        var groups: [(kind: String, records: [(key: String, value: Value)])] = []
        var usedIDs: Set<String> = []
        var relationCount = 0
        var contextIDs: [String: String] = [:]
        var rootID = ""
        var userID = ""
        var userIDs: [UInt32: String] = [:]

        init(run: RunFiles, user: String, absoluteDirectory: String) {
            self.run = run
            self.user = user
            self.absoluteDirectory = absoluteDirectory
        }

        var startText: String? { run.identity.startTime > 0 ? ISOTimeFormatter.string(run.identity.startTime) : nil }
        var endText: String? { run.endTime.map(ISOTimeFormatter.string) }

        func path(_ relative: String) -> String { absoluteDirectory + "/" + relative }

        func document() -> Value {
            let prefixes: Value = [
                "xsd": .string(Provenance.xsd), "prov": .string(Provenance.prov), "provml": .string(Provenance.provml),
                "yprov": .string(Provenance.yprov), "dcterms": .string(Provenance.dcterms), "logd": .string(Provenance.logd),
                "default": .string("urn:logd:run:" + Provenance.iriSegment(run.runID) + "/"),
            ]
            var fields: Attributes = [(key: "prefix", value: prefixes)]
            for g in groups where !g.records.isEmpty { fields.append((key: g.kind, value: .map(g.records))) }
            return .map(fields)
        }

        mutating func add(_ kind: String, _ id: String, _ attributes: Attributes) {
            if let i = groups.firstIndex(where: { $0.kind == kind }) {
                groups[i].records.append((key: id, value: .map(attributes)))
            } else {
                groups.append((kind: kind, records: [(key: id, value: .map(attributes))]))
            }
        }

        /// A relation, identified by a blank node.
        mutating func relate(_ kind: String, _ attributes: Attributes) {
            relationCount += 1
            add(kind, "_:r\(relationCount)", attributes)
        }

        /// A fresh id from parts joined by yProv4ML's `//` (`loss//training`).
        mutating func newID(_ parts: String...) -> String {
            let base = parts.map(Provenance.idPart).joined(separator: "//")
            var id = base
            var n = 1
            while usedIDs.contains(id) {
                n += 1
                id = base + "_\(n)"
            }
            usedIDs.insert(id)
            return id
        }

        /// The activity of `context` (the run's own when empty), created on first use.
        mutating func activity(_ context: String) -> String {
            if context.isEmpty { return rootID }
            if let id = contextIDs[context] { return id }
            let id = newID(context)
            contextIDs[context] = id
            var attrs: Attributes = [
                (key: "prov:type", value: "provml:Context"),
                (key: "prov:label", value: .string(context)),
                (key: "yprov:context", value: .string(context)),
            ]
            times(&attrs)
            attrs.append((key: "logd:context", value: .string(context)))
            add("activity", id, attrs)
            relate("wasInformedBy", [(key: "prov:informed", value: .string(id)), (key: "prov:informant", value: .string(rootID))])
            return id
        }

        /// An activity's start and end, as PROV's formal attributes and as yProv4ML's.
        func times(_ attrs: inout Attributes) {
            if let start = startText {
                attrs.append((key: "prov:startTime", value: .string(start)))
                attrs.append((key: "prov:startedAtTime", value: .string(start)))
            }
            if let end = endText {
                attrs.append((key: "prov:endTime", value: .string(end)))
                attrs.append((key: "prov:endedAtTime", value: .string(end)))
            }
        }

        mutating func build() {
            buildRoot()
            buildRanks()
            buildParams()
            buildMetrics()
            buildOutputs()
            buildDatasets()
        }

        mutating func agent(_ uid: UInt32?, _ name: String) -> String {
            if let uid, let id = userIDs[uid] { return id }
            let id = newID(name)
            var attrs: Attributes = [
                (key: "prov:type", value: Provenance.qname("prov:Person")),
                (key: "prov:label", value: .string(name)),
            ]
            if let uid { attrs.append((key: "logd:uid", value: Provenance.long(Int64(uid)))) }
            add("agent", id, attrs)
            if let uid { userIDs[uid] = id }
            return id
        }

        mutating func buildRoot() {
            let s = run.identity
            rootID = newID(run.directory)
            var ranks: [Int32] = []
            for p in run.producers where !ranks.contains(p.info.start.rank) { ranks.append(p.info.start.rank) }
            ranks.sort()
            let worldSize = Int64(run.producers.map(\.info.start.worldSize).max() ?? s.worldSize)
            var attrs: Attributes = [
                (key: "prov:type", value: "provml:LearningExecution"),
                (key: "prov:label", value: .string(s.name)),
            ]
            times(&attrs)
            let root =
                absoluteDirectory.hasSuffix("/" + run.directory)
                ? String(absoluteDirectory.dropLast(run.directory.count + 1)) : absoluteDirectory
            attrs += [
                (key: "yprov:provenance_path", value: .string(root)),
                (key: "yprov:experiment_dir", value: .string(absoluteDirectory)),
                (key: "yprov:artifact_uri", value: .string(path("artifacts"))),
                (key: "yprov:experiment_name", value: .string(s.experiment)),
                (key: "yprov:run_id", value: .string(run.runID)),
                (key: "yprov:runtime_type", value: .string(worldSize > 1 || ranks.count > 1 ? "distributed" : "single_core")),
            ]
            if ranks.count == 1 { attrs.append((key: "yprov:global_rank", value: Provenance.long(Int64(ranks[0])))) }
            attrs += [
                (key: "logd:runId", value: .string(run.runID)),
                (key: "logd:experiment", value: .string(s.experiment)),
                (key: "logd:status", value: .string(run.status.rawValue)),
                (key: "logd:directory", value: .string(run.directory)),
                (key: "logd:user", value: .string(user)),
            ]
            var hosts: [String] = []
            for h in [s.host] + run.producers.map(\.info.start.host) where !h.isEmpty && !hosts.contains(h) { hosts.append(h) }
            if !hosts.isEmpty {
                let v: Value = hosts.count == 1 ? .string(hosts[0]) : .list(hosts.map(Value.string))
                attrs.append((key: "yprov:host_name", value: v))
                attrs.append((key: "logd:host", value: v))
            }
            if !ranks.isEmpty {
                let values = ranks.map { Provenance.long(Int64($0)) }
                attrs.append((key: "logd:rank", value: values.count == 1 ? values[0] : .list(values)))
            }
            attrs.append((key: "logd:worldSize", value: Provenance.long(worldSize)))
            if !s.commandLine.isEmpty { attrs.append((key: "logd:commandLine", value: .string(s.commandLine.joined(separator: " ")))) }
            if !s.gitCommit.isEmpty { attrs.append((key: "logd:gitCommit", value: .string(s.gitCommit))) }
            if let seed = s.seed { attrs.append((key: "logd:seed", value: Provenance.long(seed))) }
            add("activity", rootID, attrs)

            userID = agent(run.producers.first?.info.uid, user)
            relate("wasAssociatedWith", [(key: "prov:activity", value: .string(rootID)), (key: "prov:agent", value: .string(userID))])
        }

        /// One activity per rank, informed by the run: yProv4ML's per-rank documents, unified.
        mutating func buildRanks() {
            var order: [Int32] = []
            var byRank: [Int32: [RunFiles.Producer]] = [:]
            for p in run.producers {
                if byRank[p.info.start.rank] == nil { order.append(p.info.start.rank) }
                byRank[p.info.start.rank, default: []].append(p)
            }
            guard order.count > 1 || (run.producers.map(\.info.start.worldSize).max() ?? 1) > 1 else { return }
            for rank in order.sorted() {
                let ps = byRank[rank] ?? []
                guard let first = ps.first else { continue }
                let id = newID(run.directory, "GR\(rank)")
                var attrs: Attributes = [
                    (key: "prov:type", value: "provml:RankExecution"),
                    (key: "prov:label", value: .string("rank \(rank)")),
                    (key: "yprov:global_rank", value: Provenance.long(Int64(rank))),
                    (key: "yprov:local_rank", value: Provenance.long(Int64(first.info.start.localRank))),
                    (key: "yprov:host_name", value: .string(first.info.start.host)),
                ]
                if first.info.start.startTime > 0 {
                    attrs.append((key: "prov:startTime", value: .string(ISOTimeFormatter.string(first.info.start.startTime))))
                }
                let pids = ps.map { Provenance.long(Int64($0.info.pid)) }
                attrs.append((key: "logd:pid", value: pids.count == 1 ? pids[0] : .list(pids)))
                let statuses = ps.map(\.status.rawValue)
                attrs.append((key: "logd:status", value: statuses.count == 1 ? .string(statuses[0]) : .list(statuses.map(Value.string))))
                add("activity", id, attrs)
                relate("wasInformedBy", [(key: "prov:informed", value: .string(id)), (key: "prov:informant", value: .string(rootID))])
                let who = agent(first.info.uid, run.userNames[first.info.uid] ?? user)
                relate("wasAssociatedWith", [(key: "prov:activity", value: .string(id)), (key: "prov:agent", value: .string(who))])
            }
        }

        /// Each leaf of the params tree (dotted key path; list items as `[i]`), used by the run.
        mutating func buildParams() {
            var leaves: [(path: String, value: Value)] = []
            var omitted = 0
            func walk(_ v: Value, _ path: String) {
                switch v {
                case .map(let entries) where !entries.isEmpty:
                    for (k, item) in entries { walk(item, path.isEmpty ? k : path + "." + k) }
                case .list(let items) where !items.isEmpty:
                    for (i, item) in items.enumerated() { walk(item, path + "[\(i)]") }
                default:
                    if leaves.count < Provenance.maxParamEntities { leaves.append((path, v)) } else { omitted += 1 }
                }
            }
            if case .map(let entries) = run.params, !entries.isEmpty { walk(run.params, "") }
            for (key, value) in leaves {
                let id = newID(key, run.directory)
                var attrs: Attributes = [
                    (key: "prov:type", value: "provml:HyperParameter"),
                    (key: "prov:label", value: .string(key)),
                    (key: "yprov:fullLabel", value: .string(id)),
                ]
                if let literal = Provenance.literal(value) {
                    attrs.append((key: "prov:value", value: literal))
                } else {
                    attrs.append((key: "logd:isNull", value: Provenance.bool(true)))
                }
                attrs += [
                    (key: "prov:role", value: "input"),
                    (key: "dcterms:identifier", value: .string(path("config.yaml"))),
                    (key: "prov:location", value: "config.yaml"),
                ]
                add("entity", id, attrs)
                relate("used", [(key: "prov:activity", value: .string(rootID)), (key: "prov:entity", value: .string(id))])
            }
            if omitted > 0 { appendRootAttribute("logd:paramsOmitted", Provenance.long(Int64(omitted))) }
        }

        mutating func appendRootAttribute(_ key: String, _ value: Value) {
            guard let g = groups.firstIndex(where: { $0.kind == "activity" }),
                let r = groups[g].records.firstIndex(where: { $0.key == rootID }), case .map(var attrs) = groups[g].records[r].value
            else { return }
            attrs.append((key: key, value: value))
            groups[g].records[r].value = .map(attrs)
        }

        /// One entity per (context, key), generated by its context. `dcterms:identifier` is the
        /// metric file (yProv4ML's reference; the samples stay there), `yprov:file_size` its size
        /// when prov.json was written: once the run has ended, its own file
        /// `metrics/<key>_<context>_<source>.csv` (MetricFiles), which yProv4ML's `get_metric`
        /// finds by that name; before (or where it could not be written), metrics.csv.
        /// `logd:metricsFile` is always metrics.csv, the record. Entities with shorter file
        /// names come first: `get_metric` takes the first identifier that contains
        /// `<key>_<context>_<source>`, and `loss_training_None` is inside `val_loss_training_None`.
        mutating func buildMetrics() {
            let live = path(run.metrics.liveName)
            let names = MetricFiles.names(run.summaries)
            let ended = run.endTime != nil && run.status != .crashed
            let sizes = ended ? MetricFiles.existingSizes(run, names: names) : Array(repeating: nil, count: names.count)
            let order = run.summaries.indices.sorted { (names[$0].utf8.count, $0) < (names[$1].utf8.count, $1) }
            for i in order {
                let s = run.summaries[i]
                let act = activity(s.context)
                let id = newID(s.key, s.context.isEmpty ? run.directory : s.context)
                let own = sizes[i].map { (location: MetricFiles.directory + "/" + names[i], size: $0) }
                var attrs: Attributes = [
                    (key: "prov:type", value: "provml:Metric"),
                    (key: "prov:label", value: .string(s.key)),
                    (key: "yprov:fullLabel", value: .string(id)),
                    (key: "yprov:context", value: .string(s.context)),
                    (key: "yprov:source", value: .string(MetricFiles.sourceLabel(s))),
                    (key: "dcterms:identifier", value: .string(own.map { path($0.location) } ?? live)),
                    (key: "yprov:file_size", value: Provenance.long(own?.size ?? Int64(run.metrics.size))),
                    (key: "prov:role", value: "output"),
                ]
                if let start = startText { attrs.append((key: "prov:generatedAtTime", value: .string(start))) }
                attrs += [
                    (key: "prov:location", value: .string(own?.location ?? run.metrics.liveName)),
                    (key: "logd:metricsFile", value: .string(live)),
                    (key: "logd:context", value: .string(s.context)),
                ]
                if !s.sources.isEmpty {
                    attrs.append((key: "logd:source", value: s.sources.count == 1 ? .string(s.sources[0]) : .list(s.sources.map(Value.string))))
                }
                attrs.append((key: "logd:segments", value: Provenance.long(Int64(run.metrics.rotated + 1))))
                // The summary as of this rewrite (summary.yaml is rewritten more often).
                attrs.append((key: "logd:count", value: Provenance.long(s.count)))
                if s.firstStep != WireProtocol.noStep { attrs.append((key: "logd:firstStep", value: Provenance.long(s.firstStep))) }
                if s.lastStep != WireProtocol.noStep { attrs.append((key: "logd:lastStep", value: Provenance.long(s.lastStep))) }
                if s.count > 0 { attrs.append((key: "logd:last", value: Provenance.double(s.last))) }
                if !s.min.isNaN { attrs.append((key: "logd:min", value: Provenance.double(s.min))) }
                if !s.max.isNaN { attrs.append((key: "logd:max", value: Provenance.double(s.max))) }
                attrs.append((key: "logd:summary", value: "summary.yaml"))
                add("entity", id, attrs)
                relate("wasGeneratedBy", [(key: "prov:entity", value: .string(id)), (key: "prov:activity", value: .string(act))])
                relate("wasAttributedTo", [(key: "prov:entity", value: .string(id)), (key: "prov:agent", value: .string(userID))])
            }
        }

        mutating func buildOutputs() {
            var modelIDs: [Int: String] = [:]
            for (mi, m) in run.models.enumerated() {
                let id = newID(m.name, "models")
                modelIDs[mi] = id
                let stem = "yprov:" + Provenance.attributePart(m.name)
                var attrs: Attributes = [
                    (key: "prov:type", value: "provml:Model"),
                    (key: "prov:label", value: .string(m.name)),
                    (key: "yprov:fullLabel", value: .string(id)),
                    (key: "dcterms:identifier", value: .string(path("models/\(m.dir)/model.yaml"))),
                ]
                if let info = m.info {
                    attrs.append((key: stem + "_total_params", value: Provenance.long(info.parameterCount)))
                    attrs.append((key: stem + "_memory_of_model", value: Provenance.double(Double(info.memoryBytes) / 1e6)))
                }
                attrs += [
                    (key: "prov:location", value: .string("models/\(m.dir)/model.yaml")),
                    (key: "logd:versions", value: Provenance.long(Int64(m.versions))),
                ]
                if let info = m.info {
                    attrs.append((key: "logd:parameterCount", value: Provenance.long(info.parameterCount)))
                    attrs.append((key: "logd:memoryBytes", value: Provenance.long(info.memoryBytes)))
                    if case .list(let layers) = info.layers {
                        attrs.append((key: "logd:layerCount", value: Provenance.long(Int64(layers.count))))
                    }
                }
                add("entity", id, attrs)
                relate("wasAttributedTo", [(key: "prov:entity", value: .string(id)), (key: "prov:agent", value: .string(userID))])
            }
            for e in run.outputs {
                let f = e.fields
                let act = activity(f.context)
                let ctxPart = f.context.isEmpty ? run.directory : f.context
                let id: String
                var attrs: Attributes = []
                let location = e.storedPath ?? f.originalPath
                if e.isModelVersion {
                    let modelName = run.models.indices.contains(e.model) ? run.models[e.model].name : "model"
                    id = newID("\(modelName)_v\(e.version)", ctxPart)
                    attrs += [
                        (key: "prov:type", value: "provml:Model"),
                        (key: "prov:label", value: .string("\(modelName)_v\(e.version)")),
                    ]
                } else {
                    let name = e.storedPath.map { String($0.dropFirst("artifacts/".count)) } ?? f.fileName
                    id = newID(name, ctxPart)
                    attrs += [
                        (key: "prov:type", value: "provml:Artifact"),
                        (key: "prov:label", value: .string(f.fileName)),
                    ]
                }
                attrs += [
                    (key: "yprov:fullLabel", value: .string(id)),
                    (key: "dcterms:identifier", value: .string(e.storedPath.map(path) ?? f.originalPath)),
                    (key: "prov:role", value: .string(e.role == .input ? "input" : "output")),
                ]
                if e.state != .pending { attrs.append((key: "yprov:file_size", value: Provenance.long(e.size))) }
                if f.timestamp > 0 { attrs.append((key: "prov:generatedAtTime", value: .string(ISOTimeFormatter.string(f.timestamp)))) }
                if e.isModelVersion {
                    attrs += [
                        (key: "logd:model", value: .string(run.models.indices.contains(e.model) ? run.models[e.model].name : "")),
                        (key: "logd:version", value: Provenance.long(Int64(e.version))),
                    ]
                } else {
                    attrs.append((key: "logd:role", value: .string(e.role.name)))
                }
                attrs += [
                    (key: "prov:location", value: .string(location)),
                    (key: "logd:mode", value: .string(f.mode.name)),
                    (key: "logd:status", value: .string(e.state.rawValue)),
                    (key: "logd:context", value: .string(f.context)),
                ]
                if f.step != WireProtocol.noStep { attrs.append((key: "logd:step", value: Provenance.long(f.step))) }
                if e.state != .pending { attrs.append((key: "logd:size", value: Provenance.long(e.size))) }
                if !e.sha256.isZero { attrs.append((key: "logd:sha256", value: .string(e.sha256.description))) }
                add("entity", id, attrs)

                var when: Attributes = []
                if f.timestamp > 0 { when.append((key: "prov:time", value: .string(ISOTimeFormatter.string(f.timestamp)))) }
                if e.role == .input && !e.isModelVersion {
                    relate("used", [(key: "prov:activity", value: .string(act)), (key: "prov:entity", value: .string(id))] + when)
                } else {
                    relate("wasGeneratedBy", [(key: "prov:entity", value: .string(id)), (key: "prov:activity", value: .string(act))] + when)
                    relate("wasAttributedTo", [(key: "prov:entity", value: .string(id)), (key: "prov:agent", value: .string(userID))])
                }
                if e.isModelVersion, let model = modelIDs[e.model] {
                    relate(
                        "specializationOf", [(key: "prov:specificEntity", value: .string(id)), (key: "prov:generalEntity", value: .string(model))])
                }
                if e.storedPath != nil {
                    // A copy: derived from the file the client named (recorded, never opened).
                    let original = newID("Original_" + f.fileName, ctxPart)
                    add(
                        "entity", original,
                        [
                            (key: "prov:type", value: "provml:OriginalFile"),
                            (key: "prov:label", value: .string("Original_" + f.fileName)),
                            (key: "yprov:fullLabel", value: .string(original)),
                            (key: "dcterms:identifier", value: .string(f.originalPath)),
                            (key: "prov:location", value: .string(f.originalPath)),
                        ])
                    relate("wasDerivedFrom", [(key: "prov:generatedEntity", value: .string(id)), (key: "prov:usedEntity", value: .string(original))])
                }
            }
        }

        /// Each data set, used by its context, with yProv4ML's `yprov:<label>_stat_…` attributes.
        mutating func buildDatasets() {
            for d in run.datasets {
                let act = activity(d.context)
                let id = newID(d.label, d.context.isEmpty ? run.directory : d.context)
                let stem = "yprov:" + Provenance.attributePart(d.label) + "_stat_"
                add(
                    "entity", id,
                    [
                        (key: "prov:type", value: "provml:Dataset"),
                        (key: "prov:label", value: .string(d.label)),
                        (key: "yprov:fullLabel", value: .string(id)),
                        (key: "prov:role", value: "input"),
                        (key: stem + "batch_size", value: Provenance.long(Int64(d.batchSize))),
                        (key: stem + "num_workers", value: Provenance.long(Int64(d.workers))),
                        (key: stem + "shuffle", value: Provenance.bool(d.shuffle)),
                        (key: stem + "total_steps", value: Provenance.long(d.batches)),
                        (key: stem + "total_samples", value: Provenance.long(d.samples)),
                        (key: "logd:context", value: .string(d.context)),
                        (key: "logd:samples", value: Provenance.long(d.samples)),
                        (key: "logd:batchSize", value: Provenance.long(Int64(d.batchSize))),
                        (key: "logd:workers", value: Provenance.long(Int64(d.workers))),
                        (key: "logd:shuffle", value: Provenance.bool(d.shuffle)),
                        (key: "logd:batches", value: Provenance.long(d.batches)),
                    ])
                relate("used", [(key: "prov:activity", value: .string(act)), (key: "prov:entity", value: .string(id))])
            }
        }
    }
}
