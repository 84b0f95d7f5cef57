import Wire
import LogdSystem

/// `logctl compare`: one row per run of an experiment, a column for every param that differs
/// between the runs (config.yaml flattened to dotted keys) and for the chosen metrics.
/// docs/LOGCTL.md describes the columns, the sort order and every output format.
public struct Comparison {
    public enum Stat: String, CaseIterable, Sendable {
        case last, min, max, count
        func value(_ s: MetricStats) -> Value {
            let d: Double?
            switch self {
            case .last: d = s.last
            case .min: d = s.min
            case .max: d = s.max
            case .count: return .int(s.count)
            }
            return d.map(Value.double) ?? .null
        }
    }

    public struct Row {
        public var run: RunDirectory
        /// Values of `params`, in column order (`nil`: the run has no such param).
        public var params: [Value?]
        /// Values of `metrics`, in column order (`.null`: the run has no such metric).
        public var metrics: [Value]
    }

    public struct Column {
        public var name: String
        public var id: MetricID?
        /// `--metric key[source]`: one source of a key logged from several (a parameter's grad norm).
        public var source: String? = nil
    }

    public var experiment: String
    /// Dotted param keys whose values are not the same in every run.
    public var params: [String]
    /// Metric columns: `key` when that key is in one context only, else `context/key`.
    public var metrics: [Column]
    public var stat: Stat
    public var rows: [Row]
    /// `--metric` names that matched no metric of any run (their column shows no values).
    public var unmatched: [String]

    public enum Failure: Error, CustomStringConvertible {
        case unknownSortKey(String, known: [String])
        public var description: String {
            switch self {
            case .unknownSortKey(let k, let known):
                "unknown sort key '\(k)': use name, run_id, status, start, a param or a metric (\(known.prefix(8).joined(separator: ", "))…)"
            }
        }
    }

    /// Builds the comparison of `runs`. `metricNames` empty: every metric of every run.
    /// `sort`: a column (name, run_id, status, start, a dotted param, a metric column or
    /// `context/key`); ascending, missing values last; `descending` reverses the values' order
    /// (missing values stay last). Without `sort`: by start time.
    public init(
        experiment: String, runs: [RunDirectory], metricNames: [String] = [], stat: Stat = .last, sort: String? = nil,
        descending: Bool = false
    ) throws(Failure) {
        self.experiment = experiment
        self.stat = stat
        let configs = runs.map { run -> [(key: String, value: Value)] in
            run.config().map { TextFormat.flatten($0) } ?? []
        }
        var order: [String] = []
        var seen = Set<String>()
        for c in configs { for (k, _) in c where seen.insert(k).inserted { order.append(k) } }
        let lookups = configs.map { c -> [String: Value] in
            var d: [String: Value] = [:]
            for (k, v) in c { d[k] = v }
            return d
        }
        params = order.filter { k in
            let values = lookups.map { $0[k] }
            return values.contains { $0 != values[0] }
        }
        let runSummaries = runs.map { MetricsReader.summaries($0) }
        let summaries = runSummaries.map { list -> [MetricID: MetricStats] in
            var d: [MetricID: MetricStats] = [:]
            for s in list { d[s.id] = s.stats }
            return d
        }
        var ids: [MetricID] = []
        var seenIDs = Set<MetricID>()
        for list in runSummaries {
            for s in list where seenIDs.insert(s.id).inserted { ids.append(s.id) }
        }
        var contextsPerKey: [String: Int] = [:]
        for id in ids { contextsPerKey[id.key, default: 0] += 1 }
        func display(_ id: MetricID) -> String { contextsPerKey[id.key] == 1 ? id.key : id.description }
        var columns: [Column] = []
        var unmatched: [String] = []
        if metricNames.isEmpty {
            columns = ids.map { Column(name: display($0), id: $0) }
        } else {
            for name in metricNames {
                let (base, source) = Comparison.splitSource(name)
                var matches = ids.filter { $0.description == base }
                if matches.isEmpty { matches = ids.filter { $0.key == base } }
                if matches.isEmpty {
                    unmatched.append(name)
                    columns.append(Column(name: name, id: nil))
                }
                for id in matches where !columns.contains(where: { $0.id == id && $0.source == source }) {
                    columns.append(Column(name: display(id) + (source.map { "[\($0)]" } ?? ""), id: id, source: source))
                }
            }
        }
        metrics = columns
        self.unmatched = unmatched
        var rows: [Row] = []
        let needSources = columns.contains { $0.source != nil }
        for (i, run) in runs.enumerated() {
            // Per-source stats come from metrics.csv (summary.yaml merges the sources of a key).
            let bySource = needSources ? MetricsReader.parse(run).sourceStats : [:]
            func stats(_ c: Column) -> MetricStats? {
                guard let id = c.id else { return nil }
                guard let source = c.source else { return summaries[i][id] }
                return bySource[id]?.first { $0.source == source }?.stats
            }
            rows.append(Row(run: run, params: params.map { lookups[i][$0] }, metrics: columns.map { c in stats(c).map { stat.value($0) } ?? .null }))
        }
        if let sort {
            let key: (Row) -> Value?
            switch sort {
            case "name": key = { .string($0.run.name) }
            case "run_id", "id": key = { .string($0.run.runID) }
            case "status": key = { .string($0.run.status) }
            case "start", "start_time": key = { $0.run.startNanos.map { .int($0) } }
            default:
                if let c = columns.firstIndex(where: { $0.name == sort || $0.id?.description == sort }) {
                    key = { $0.metrics[c] == .null ? nil : $0.metrics[c] }
                } else if let p = params.firstIndex(of: sort) {
                    key = { $0.params[p] }
                } else if seen.contains(sort) {
                    let rowIndex = Dictionary(uniqueKeysWithValues: runs.enumerated().map { ($1.path, $0) })
                    key = { lookups[rowIndex[$0.run.path]!][sort] }
                } else if let id = ids.first(where: { $0.description == sort || $0.key == sort }) {
                    let rowIndex = Dictionary(uniqueKeysWithValues: runs.enumerated().map { ($1.path, $0) })
                    key = { summaries[rowIndex[$0.run.path]!][id].map { stat.value($0) } }
                } else {
                    throw .unknownSortKey(
                        sort, known: ["name", "run_id", "status", "start"] + params + columns.map(\.name))
                }
            }
            let keyed = rows.enumerated().map { (offset: $0.offset, row: $0.element, key: key($0.element)) }
            rows = keyed.sorted { a, b in
                switch (a.key, b.key) {
                case (nil, nil): return a.offset < b.offset
                case (nil, _): return false
                case (_, nil): return true
                case (let x?, let y?):
                    let c = Comparison.order(x, y)
                    if c == 0 { return a.offset < b.offset }
                    return descending ? c > 0 : c < 0
                }
            }.map(\.row)
        }
        self.rows = rows
    }

    /// `key[source]` → (`key`, `source`); a name without a trailing `[…]` has no source.
    static func splitSource(_ name: String) -> (String, String?) {
        guard name.hasSuffix("]"), let open = name.lastIndex(of: "["), open != name.startIndex else { return (name, nil) }
        return (String(name[..<open]), String(name[name.index(after: open)..<name.index(before: name.endIndex)]))
    }

    /// -1, 0, 1: numbers by value (NaN after every number), else by text.
    static func order(_ a: Value, _ b: Value) -> Int {
        func number(_ v: Value) -> Double? {
            switch v {
            case .int(let i): Double(i)
            case .double(let d): d
            case .bool(let b): b ? 1 : 0
            default: nil
            }
        }
        if let x = number(a), let y = number(b) {
            if x.isNaN || y.isNaN { return x.isNaN == y.isNaN ? 0 : (x.isNaN ? 1 : -1) }
            return x < y ? -1 : (x > y ? 1 : 0)
        }
        let x = TextFormat.valueText(a), y = TextFormat.valueText(b)
        return x < y ? -1 : (x > y ? 1 : 0)
    }

    // MARK: output

    public enum Format: String, CaseIterable, Sendable {
        case table, md, csv, json
    }

    public var header: [String] { ["name", "run_id", "status"] + params + metrics.map(\.name) }

    private func cells(exact: Bool) -> [[String]] {
        rows.map { row in
            [row.run.name, row.run.runID, row.run.status]
                + row.params.map { $0.map { TextFormat.valueText($0, compactNumbers: !exact) } ?? (exact ? "" : "-") }
                + row.metrics.map { v in
                    switch v {
                    case .null: exact ? "" : "-"
                    case .double(let d): exact ? TextFormat.exact(d) : TextFormat.compact(d)
                    default: TextFormat.valueText(v)
                    }
                }
        }
    }

    private var numericColumns: Set<Int> {
        var out = Set<Int>()
        let base = 3
        for (i, _) in params.enumerated() {
            let allNumeric = rows.allSatisfy { r in
                switch r.params[i] {
                case .int?, .double?, nil: true
                default: false
                }
            }
            if allNumeric { out.insert(base + i) }
        }
        for i in metrics.indices { out.insert(base + params.count + i) }
        return out
    }

    public func render(_ format: Format) -> String {
        switch format {
        case .table: TextFormat.table(header, cells(exact: false), rightAligned: numericColumns)
        case .md: TextFormat.markdown(header, cells(exact: false), rightAligned: numericColumns)
        case .csv: TextFormat.csv(header, cells(exact: true))
        case .json: json.jsonText(pretty: true) + "\n"
        }
    }

    /// The stable JSON shape (docs/LOGCTL.md).
    public var json: Value {
        .map([
            (key: "experiment", value: .string(experiment)),
            (key: "stat", value: .string(stat.rawValue)),
            (key: "params", value: .list(params.map(Value.string))),
            (key: "metrics", value: .list(metrics.map { .string($0.name) })),
            (
                key: "runs",
                value: .list(
                    rows.map { row in
                        .map([
                            (key: "run_id", value: .string(row.run.runID)),
                            (key: "name", value: .string(row.run.name)),
                            (key: "status", value: .string(row.run.status)),
                            (key: "start_time", value: row.run.startTime.map(Value.string) ?? .null),
                            (key: "directory", value: .string(row.run.relative)),
                            (key: "params", value: .map(zip(params, row.params).map { (key: $0, value: $1 ?? .null) })),
                            (key: "metrics", value: .map(zip(metrics, row.metrics).map { (key: $0.name, value: $1) })),
                        ])
                    })
            ),
        ])
    }
}
