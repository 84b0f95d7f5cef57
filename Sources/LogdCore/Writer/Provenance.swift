import Wire

/// prov.json: a run as a W3C PROV-JSON document, in the shape yProv4ML users know — a root
/// activity for the run, an activity per context informed by it, hyperparameters as entities
/// the run used, metric entities pointing at metrics.csv, artifacts and model versions as
/// entities (inputs used, outputs generated, copies derived from their originals), datasets
/// used by their context, and the user as the agent. docs/RUN_OUTPUTS.md lists every record.
///
/// Identifiers are qualified names `run:<kind>/<name>` in a namespace of the run's own
/// (`urn:logd:run:<run id>/`); local parts use `[A-Za-z0-9._/-]` only (other characters
/// become `_`, repeats get `_2`, `_3`, …), so the document reads back without warnings. The
/// exact client strings are in `prov:label`. Typed values are `{"$": text, "type": "xsd:…"}`,
/// with non-finite doubles as `NaN`, `INF`, `-INF`. Writer-confined.
enum Provenance {
    static let xsd = "http://www.w3.org/2001/XMLSchema#"
    static let prov = "http://www.w3.org/ns/prov#"
    /// logd's vocabulary: record types (`logd:Run`, …) and attribute names.
    static let logd = "urn:logd:ns#"
    /// Most hyperparameter entities one document holds (the rest are counted, not listed).
    static let maxParamEntities = 4096

    static func document(for run: RunFiles, user: String) -> [UInt8] {
        var b = Builder(run: run, user: user)
        b.build()
        return Array(b.document().jsonText(pretty: true).utf8)
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
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E
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

    struct Builder {
        let run: RunFiles
        let user: String
        /// Record groups in document order: kind → [(id, attributes)].
        var groups: [(kind: String, records: [(key: String, value: Value)])] = []
        var usedIDs: Set<String> = []
        var relationCount = 0
        var contextIDs: [String: String] = [:]
        let rootID = "run:run"
        var userID = ""

        init(run: RunFiles, user: String) {
            self.run = run
            self.user = user
        }

        func document() -> Value {
            var fields: [(key: String, value: Value)] = [
                (
                    key: "prefix",
                    value: [
                        "xsd": .string(Provenance.xsd), "prov": .string(Provenance.prov), "logd": .string(Provenance.logd),
                        "run": .string("urn:logd:run:" + Provenance.iriSegment(run.runID) + "/"),
                    ]
                )
            ]
            for g in groups where !g.records.isEmpty { fields.append((key: g.kind, value: .map(g.records))) }
            return .map(fields)
        }

        mutating func add(_ kind: String, _ id: String, _ attributes: [(key: String, value: Value)]) {
            if let i = groups.firstIndex(where: { $0.kind == kind }) {
                groups[i].records.append((key: id, value: .map(attributes)))
            } else {
                groups.append((kind: kind, records: [(key: id, value: .map(attributes))]))
            }
        }

        /// A relation, identified by a blank node.
        mutating func relate(_ kind: String, _ attributes: [(key: String, value: Value)]) {
            relationCount += 1
            add(kind, "_:r\(relationCount)", attributes)
        }

        /// A fresh identifier `run:<kind>/<name>` for a client-named thing.
        mutating func newID(_ kind: String, _ name: String) -> String {
            var bytes: [UInt8] = []
            for b in name.utf8 {
                let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F
                    || b == 0x2D || b == 0x2F
                let c = ok ? b : 0x5F
                if c == 0x2F, bytes.isEmpty || bytes.last == 0x2F { bytes.append(0x5F) }  // no empty segments
                bytes.append(c)
                if bytes.count >= 120 { break }
            }
            // Nothing PROV-N would have to escape at either end.
            if bytes.isEmpty || bytes[0] == 0x2D || bytes[0] == 0x2E { bytes.insert(0x5F, at: 0) }
            if bytes.last == 0x2F || bytes.last == 0x2E { bytes.append(0x5F) }
            let local = String(decoding: bytes, as: UTF8.self)
            var id = "run:\(kind)/\(local)"
            var n = 1
            while usedIDs.contains(id) {
                n += 1
                id = "run:\(kind)/\(local)_\(n)"
            }
            usedIDs.insert(id)
            return id
        }

        /// The activity of `context` (the run's own when empty), created on first use.
        mutating func activity(_ context: String) -> String {
            if context.isEmpty { return rootID }
            if let id = contextIDs[context] { return id }
            let id = newID("context", context)
            contextIDs[context] = id
            var attrs: [(key: String, value: Value)] = [
                (key: "prov:type", value: Provenance.qname("logd:Context")),
                (key: "prov:label", value: .string(context)),
                (key: "logd:context", value: .string(context)),
            ]
            if run.identity.startTime > 0 {
                attrs.append((key: "prov:startTime", value: .string(ISOTimeFormatter.string(run.identity.startTime))))
            }
            if let end = run.endTime { attrs.append((key: "prov:endTime", value: .string(ISOTimeFormatter.string(end)))) }
            add("activity", id, attrs)
            relate("wasInformedBy", [(key: "prov:informed", value: .string(id)), (key: "prov:informant", value: .string(rootID))])
            return id
        }

        mutating func build() {
            usedIDs.insert(rootID)
            buildRoot()
            buildParams()
            buildMetrics()
            buildOutputs()
            buildDatasets()
        }

        mutating func buildRoot() {
            let s = run.identity
            var attrs: [(key: String, value: Value)] = [
                (key: "prov:type", value: Provenance.qname("logd:Run")),
                (key: "prov:label", value: .string(s.name)),
            ]
            if s.startTime > 0 { attrs.append((key: "prov:startTime", value: .string(ISOTimeFormatter.string(s.startTime)))) }
            if let end = run.endTime { attrs.append((key: "prov:endTime", value: .string(ISOTimeFormatter.string(end)))) }
            attrs += [
                (key: "logd:runId", value: .string(run.runID)),
                (key: "logd:experiment", value: .string(s.experiment)),
                (key: "logd:status", value: .string(run.status)),
                (key: "logd:directory", value: .string(run.directory)),
                (key: "logd:user", value: .string(user)),
            ]
            var hosts: [String] = []
            for h in [s.host] + run.producers.map(\.info.start.host) where !h.isEmpty && !hosts.contains(h) { hosts.append(h) }
            if !hosts.isEmpty { attrs.append((key: "logd:host", value: hosts.count == 1 ? .string(hosts[0]) : .list(hosts.map(Value.string)))) }
            var ranks: [Int32] = []
            for p in run.producers where !ranks.contains(p.info.start.rank) { ranks.append(p.info.start.rank) }
            if !ranks.isEmpty {
                let values = ranks.sorted().map { Provenance.long(Int64($0)) }
                attrs.append((key: "logd:rank", value: values.count == 1 ? values[0] : .list(values)))
            }
            attrs.append((key: "logd:worldSize", value: Provenance.long(Int64(run.producers.map(\.info.start.worldSize).max() ?? s.worldSize))))
            if !s.commandLine.isEmpty { attrs.append((key: "logd:commandLine", value: .string(s.commandLine.joined(separator: " ")))) }
            if !s.gitCommit.isEmpty { attrs.append((key: "logd:gitCommit", value: .string(s.gitCommit))) }
            if let seed = s.seed { attrs.append((key: "logd:seed", value: Provenance.long(seed))) }
            add("activity", rootID, attrs)

            userID = newID("user", user)
            var agent: [(key: String, value: Value)] = [
                (key: "prov:type", value: Provenance.qname("prov:Person")),
                (key: "prov:label", value: .string(user)),
            ]
            if let uid = run.producers.first?.info.uid { agent.append((key: "logd:uid", value: Provenance.long(Int64(uid)))) }
            add("agent", userID, agent)
            relate("wasAssociatedWith", [(key: "prov:activity", value: .string(rootID)), (key: "prov:agent", value: .string(userID))])
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
            for (path, value) in leaves {
                let id = newID("param", path)
                var attrs: [(key: String, value: Value)] = [
                    (key: "prov:type", value: Provenance.qname("logd:Parameter")),
                    (key: "prov:label", value: .string(path)),
                ]
                if let literal = Provenance.literal(value) {
                    attrs.append((key: "prov:value", value: literal))
                } else {
                    attrs.append((key: "logd:isNull", value: Provenance.bool(true)))
                }
                attrs.append((key: "prov:location", value: "config.yaml"))
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

        /// One entity per (context, key), generated by its context, pointing at metrics.csv.
        mutating func buildMetrics() {
            for s in run.summaries {
                let act = activity(s.context)
                let id = newID("metric", s.context.isEmpty ? s.key : s.context + "/" + s.key)
                var attrs: [(key: String, value: Value)] = [
                    (key: "prov:type", value: Provenance.qname("logd:Metric")),
                    (key: "prov:label", value: .string(s.key)),
                    (key: "prov:location", value: "metrics.csv"),
                    (key: "logd:context", value: .string(s.context)),
                ]
                if !s.sources.isEmpty {
                    attrs.append((key: "logd:source", value: s.sources.count == 1 ? .string(s.sources[0]) : .list(s.sources.map(Value.string))))
                }
                attrs.append((key: "logd:summary", value: "summary.yaml"))
                add("entity", id, attrs)
                relate("wasGeneratedBy", [(key: "prov:entity", value: .string(id)), (key: "prov:activity", value: .string(act))])
                relate("wasAttributedTo", [(key: "prov:entity", value: .string(id)), (key: "prov:agent", value: .string(userID))])
            }
        }

        mutating func buildOutputs() {
            var modelIDs: [Int: String] = [:]
            for (mi, m) in run.models.enumerated() {
                let id = newID("model", m.dir)
                modelIDs[mi] = id
                var attrs: [(key: String, value: Value)] = [
                    (key: "prov:type", value: Provenance.qname("logd:Model")),
                    (key: "prov:label", value: .string(m.name)),
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
                let id: String
                var attrs: [(key: String, value: Value)] = []
                if e.isModelVersion {
                    id = newID("model", (run.models.indices.contains(e.model) ? run.models[e.model].dir : "model") + "/v\(e.version)")
                    attrs += [
                        (key: "prov:type", value: Provenance.qname("logd:ModelVersion")),
                        (key: "prov:label", value: .string(f.fileName)),
                        (key: "logd:model", value: .string(run.models.indices.contains(e.model) ? run.models[e.model].name : "")),
                        (key: "logd:version", value: Provenance.long(Int64(e.version))),
                    ]
                } else {
                    id = newID("artifact", e.storedPath.map { String($0.dropFirst("artifacts/".count)) } ?? f.fileName)
                    attrs += [
                        (key: "prov:type", value: Provenance.qname("logd:Artifact")),
                        (key: "prov:label", value: .string(f.fileName)),
                        (key: "logd:role", value: .string(e.role.name)),
                    ]
                }
                attrs += [
                    (key: "prov:location", value: .string(e.storedPath ?? f.originalPath)),
                    (key: "logd:mode", value: .string(f.mode.name)),
                    (key: "logd:status", value: .string(e.state.rawValue)),
                    (key: "logd:context", value: .string(f.context)),
                ]
                if f.step != WireProtocol.noStep { attrs.append((key: "logd:step", value: Provenance.long(f.step))) }
                if e.state != .pending { attrs.append((key: "logd:size", value: Provenance.long(e.size))) }
                if !e.sha256.isZero { attrs.append((key: "logd:sha256", value: .string(e.sha256.description))) }
                add("entity", id, attrs)

                var when: [(key: String, value: Value)] = []
                if f.timestamp > 0 { when.append((key: "prov:time", value: .string(ISOTimeFormatter.string(f.timestamp)))) }
                if e.role == .input {
                    relate("used", [(key: "prov:activity", value: .string(act)), (key: "prov:entity", value: .string(id))] + when)
                } else {
                    relate("wasGeneratedBy", [(key: "prov:entity", value: .string(id)), (key: "prov:activity", value: .string(act))] + when)
                    relate("wasAttributedTo", [(key: "prov:entity", value: .string(id)), (key: "prov:agent", value: .string(userID))])
                }
                if e.isModelVersion, let model = modelIDs[e.model] {
                    relate("specializationOf", [(key: "prov:specificEntity", value: .string(id)), (key: "prov:generalEntity", value: .string(model))])
                }
                if e.storedPath != nil {
                    // A copy: derived from the file the client named (recorded, never opened).
                    let original = newID("original", f.fileName)
                    add("entity", original, [
                        (key: "prov:type", value: Provenance.qname("logd:OriginalFile")),
                        (key: "prov:label", value: .string(f.fileName)),
                        (key: "prov:location", value: .string(f.originalPath)),
                    ])
                    relate("wasDerivedFrom", [(key: "prov:generatedEntity", value: .string(id)), (key: "prov:usedEntity", value: .string(original))])
                }
            }
        }

        mutating func buildDatasets() {
            for d in run.datasets {
                let act = activity(d.context)
                let id = newID("dataset", d.context.isEmpty ? d.label : d.label + "/" + d.context)
                add("entity", id, [
                    (key: "prov:type", value: Provenance.qname("logd:Dataset")),
                    (key: "prov:label", value: .string(d.label)),
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
