import ArgumentParser
import LogdRead
import LogdSystem
import Wire

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one run: identity, config, every metric's summary with a sparkline, artifacts and models.",
        discussion: """
            RUN is a run id, a unique prefix of one, a run folder's name (2026-11-22_23-40-01_baseline), the run's name \
            (baseline, or experiment/baseline), or its \
            path (absolute, or relative to the data root). Reads the files alone; no daemon needed.
            """)

    @OptionGroup var disk: DataRootOptions

    @Argument(help: ArgumentHelp("The run: id, id prefix, folder name, run name or path.", valueName: "run"))
    var runName: String

    @Option(help: "Sparkline width in cells (0: none).")
    var width = 40

    @Flag(help: "Print one JSON document (path, run.yaml, config, metric summaries) instead of the report.")
    var json = false

    /// Sections of run.yaml that get their own block below the identity.
    static let sections: Set<String> = ["producers", "artifacts", "models", "datasets"]

    func run() throws {
        let run = try disk.run(runName)
        if json {
            writeOut(Self.json(run).jsonText() + "\n")
            return
        }
        writeOut(Self.identity(run) + Self.config(run) + metrics(run) + Self.outputs(run))
    }

    /// run.yaml's fields in its order, then the producers.
    static func identity(_ run: RunDirectory) -> String {
        var out = ""
        var identity: [[String]] = []
        if let error = run.loadError { identity.append(["error", error]) }
        identity.append(["path", run.path])
        if case .map(let fields) = run.info {
            for (key, value) in fields where !Self.sections.contains(key) {
                identity.append([key, Self.text(value)])
                if key == "end_time", let d = run.durationSeconds() {
                    identity.append(["duration", TextFormat.duration(d) + (run.phase == .running ? "+" : "")])
                }
            }
        }
        let keyWidth = identity.map { $0[0].count }.max() ?? 0
        for row in identity {
            out += row[0] + String(repeating: " ", count: keyWidth - row[0].count + 2) + row[1] + "\n"
        }
        if case .list(let producers)? = run.info["producers"], !producers.isEmpty {
            out += "\nproducers\n"
            out += Self.indent(
                TextFormat.table(
                    ["RANK", "PID", "HOST", "CLIENT", "STATUS", "DROPPED", "STARTED"],
                    producers.map { p in
                        ["rank", "pid", "host", "client", "status", "dropped", "started"].map {
                            Self.text(p[$0] ?? .null)
                        }
                    }))
        }
        return out
    }

    static func config(_ run: RunDirectory) -> String {
        guard let config = run.config() else { return "\nconfig      -\n" }
        let flat = TextFormat.flatten(config)
        return "\nconfig\n"
            + (flat.isEmpty ? "  (no params)\n" : flat.map { "  \($0.key): \(TextFormat.oneLine(TextFormat.valueText($0.value)))\n" }.joined())
    }

    /// Summaries (summary.yaml when present) merged with the series read for the sparklines.
    static func metricStats(_ run: RunDirectory, series: [MetricSeries]) -> [(id: MetricID, stats: MetricStats)] {
        var stats: [(id: MetricID, stats: MetricStats)] = MetricsReader.summaries(run)
        for s in series where !stats.contains(where: { $0.id == s.id }) { stats.append((id: s.id, stats: s.stats)) }
        return stats
    }

    func metrics(_ run: RunDirectory) -> String {
        let parsed = MetricsReader.parse(run)
        let series = parsed.series
        let stats = Self.metricStats(run, series: series)
        if stats.isEmpty { return "\nmetrics     -\n" }
        let total = stats.reduce(Int64(0)) { $0 + $1.stats.count }
        var out = "\nmetrics (\(stats.count) keys, \(total) samples)\n"
        var rows: [[String]] = []
        for (id, s) in stats {
            let values = series.first(where: { $0.id == id })?.valuesByStep() ?? []
            let steps = s.firstStep.map { first in "\(first)..\(s.lastStep ?? first)" } ?? "-"
            rows.append([
                id.description, String(s.count), s.last.map(TextFormat.compact) ?? "-",
                s.min.map(TextFormat.compact) ?? "-",
                s.max.map(TextFormat.compact) ?? "-", steps,
                width > 0 ? MetricsReader.sparkline(values, width: width) : "",
            ])
            // A key logged from several sources (per-parameter gradient norms): a row each.
            if let sources = parsed.sourceStats[id], sources.count > 1 {
                for (source, s) in sources {
                    let steps = s.firstStep.map { first in "\(first)..\(s.lastStep ?? first)" } ?? "-"
                    rows.append([
                        "  [" + (source.isEmpty ? "-" : source) + "]", String(s.count), s.last.map(TextFormat.compact) ?? "-",
                        s.min.map(TextFormat.compact) ?? "-", s.max.map(TextFormat.compact) ?? "-", steps, "",
                    ])
                }
            }
        }
        out += Self.indent(
            TextFormat.table(["METRIC", "COUNT", "LAST", "MIN", "MAX", "STEPS", "TREND"], rows, rightAligned: [1, 2, 3, 4]))
        return out
    }

    /// Artifacts, models, datasets (as run.yaml lists them).
    static func outputs(_ run: RunDirectory) -> String {
        var out = ""
        if case .list(let artifacts)? = run.info["artifacts"], !artifacts.isEmpty {
            out += "\nartifacts\n"
            out += Self.indent(
                TextFormat.table(
                    ["ROLE", "FILE", "PATH", "STATUS", "SIZE", "STEP"],
                    artifacts.map { a in
                        [
                            Self.text(a["role"] ?? .null), Self.text(a["file_name"] ?? .null),
                            Self.text((a["path"] == .null ? a["original_path"] : a["path"]) ?? .null),
                            Self.text(a["status"] ?? .null),
                            Self.size(a["size"]), Self.text(a["step"] ?? .null),
                        ]
                    }))
        }
        if case .list(let models)? = run.info["models"], !models.isEmpty {
            out += "\nmodels\n"
            for m in models {
                var line = "  \(Self.text(m["name"] ?? .null))"
                if case .int(let n)? = m["parameter_count"] { line += "  \(n) parameters" }
                if case .int(let n)? = m["memory_bytes"] { line += "  \(StatusTable.bytes(n))" }
                out += line + "\n"
                if case .list(let versions)? = m["versions"], !versions.isEmpty {
                    out += Self.indent(
                        TextFormat.table(
                            ["VERSION", "FILE", "PATH", "STATUS", "SIZE", "STEP"],
                            versions.map { v in
                                [
                                    "v" + Self.text(v["version"] ?? .null), Self.text(v["file_name"] ?? .null),
                                    Self.text((v["path"] == .null ? v["original_path"] : v["path"]) ?? .null),
                                    Self.text(v["status"] ?? .null), Self.size(v["size"]),
                                    Self.text(v["step"] ?? .null),
                                ]
                            }), by: 4)
                }
            }
        }
        if case .list(let datasets)? = run.info["datasets"], !datasets.isEmpty {
            out += "\ndatasets\n"
            for d in datasets { out += "  " + Self.text(d) + "\n" }
        }
        return out
    }

    /// `--json`: one document — the path, run.yaml as it is, the config, and every metric's summary.
    static func json(_ run: RunDirectory) -> Value {
        func number(_ d: Double?) -> Value { d.map(Value.double) ?? .null }
        func int(_ i: Int64?) -> Value { i.map(Value.int) ?? .null }
        func stats(_ s: MetricStats) -> [(key: String, value: Value)] {
            [
                (key: "count", value: .int(s.count)), (key: "first_step", value: int(s.firstStep)),
                (key: "last_step", value: int(s.lastStep)), (key: "last", value: number(s.last)),
                (key: "min", value: number(s.min)), (key: "max", value: number(s.max)),
            ]
        }
        let parsed = MetricsReader.parse(run)
        let metrics: [Value] = metricStats(run, series: parsed.series).map { m in
            let sources: [Value] = (parsed.sourceStats[m.id] ?? []).map { .map([(key: "source", value: .string($0.source))] + stats($0.stats)) }
            return .map(
                [(key: "context", value: .string(m.id.context)), (key: "key", value: .string(m.id.key))] + stats(m.stats)
                    + [(key: "sources", value: .list(sources))])
        }
        return [
            "path": .string(run.path), "error": run.loadError.map(Value.string) ?? .null, "run": run.info,
            "config": run.config() ?? .null, "metrics": .list(metrics),
        ]
    }

    static func indent(_ text: String, by n: Int = 2) -> String {
        let pad = String(repeating: " ", count: n)
        return text.split(separator: "\n").map { pad + $0 + "\n" }.joined()
    }

    static func size(_ v: Value?) -> String {
        if case .int(let n)? = v { return StatusTable.bytes(n) }
        return "-"
    }

    /// One line for a run.yaml value: scalars as they are, a list of scalars space-separated,
    /// a map of scalars as `key=value` pairs, anything deeper as JSON.
    static func text(_ v: Value) -> String {
        func isScalar(_ v: Value) -> Bool {
            switch v {
            case .list, .map: false
            default: true
            }
        }
        switch v {
        case .null: return "-"
        case .list(let items) where items.allSatisfy(isScalar):
            return items.isEmpty ? "-" : items.map { TextFormat.valueText($0) }.joined(separator: " ")
        case .map(let entries) where entries.allSatisfy({ isScalar($0.value) }):
            return entries.map { "\($0.key)=\(TextFormat.valueText($0.value))" }.joined(separator: " ")
        default:
            return TextFormat.valueText(v)
        }
    }
}
