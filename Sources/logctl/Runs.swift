import ArgumentParser
import LogdRead
import LogdSystem
import Wire

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the runs on disk: start, experiment, name, status, duration, run id, key metrics.",
        discussion: """
            Reads the run directories under the data root (no daemon needed), oldest start first. METRICS shows \
            the last value of up to three metrics per run (losses first, then accuracies, then the others), or \
            of the ones named with --metric.
            """)

    @OptionGroup var disk: DataRootOptions

    @Option(help: "Only runs of this experiment (as the producer named it, or its folder).")
    var experiment: String?

    @Option(help: "Only runs with this status: running, finished, failed, killed, crashed.")
    var status: String?

    @Option(name: .customLong("metric"), help: "A metric to show (key or context/key); repeat for more.")
    var metrics: [String] = []

    @Flag(help: "Print a JSON list (shape: docs/LOGCTL.md).")
    var json = false

    func run() throws {
        var runs = RunCatalog.scan(root: disk.path)
        if let experiment { runs = runs.filter { $0.experiment == experiment || $0.experimentFolder == experiment } }
        if let status { runs = runs.filter { $0.status == status } }
        let now = ISOTime.now()
        var rows: [[String]] = []
        var items: [Value] = []
        // The MLflow run each run was forwarded to (docs/MLFLOW.md); a column only when any was.
        var mlflowIDs: [String?] = []
        for run in runs {
            let shown = Self.keyMetrics(MetricsReader.summaries(run), named: metrics)
            let duration = run.durationSeconds(now: now)
            if json {
                items.append(
                    .map([
                        (key: "run_id", value: .string(run.runID)),
                        (key: "experiment", value: .string(run.experiment)),
                        (key: "name", value: .string(run.name)),
                        (key: "status", value: .string(run.status)),
                        (key: "start_time", value: run.startTime.map(Value.string) ?? .null),
                        (key: "end_time", value: run.endTime.map(Value.string) ?? .null),
                        (key: "duration_s", value: duration.map(Value.double) ?? .null),
                        (key: "directory", value: .string(run.relative)),
                        (key: "mlflow_run_id", value: ForwardState.mlflowRunID(runDirectory: run.path).map(Value.string) ?? .null),
                        (
                            key: "metrics",
                            value: .map(shown.map { (key: $0.name, value: $0.last.map(Value.double) ?? .null) })
                        ),
                    ]))
            } else {
                rows.append([
                    run.startNanos.map(ISOTime.localText) ?? "-", run.experiment, run.name, run.status,
                    duration.map { TextFormat.duration($0) + (run.phase == .running ? "+" : "") } ?? "-", run.runID,
                    shown.map { "\($0.name)=\($0.last.map(TextFormat.compact) ?? "-")" }.joined(separator: " "),
                ])
                mlflowIDs.append(ForwardState.mlflowRunID(runDirectory: run.path))
            }
        }
        if json {
            writeOut(Value.list(items).jsonText(pretty: true) + "\n")
            return
        }
        if runs.isEmpty {
            var what = "no runs under \(disk.path)"
            if let experiment { what += " in experiment \(experiment)" }
            if let status { what += " with status \(status)" }
            FileOutput.stderr("logctl: \(what)\n")
            return
        }
        if mlflowIDs.contains(where: { $0 != nil }) {
            rows = zip(rows, mlflowIDs).map { row, id in Array(row.dropLast()) + [id ?? "-", row.last ?? ""] }
            writeOut(
                TextFormat.table(
                    ["START", "EXPERIMENT", "NAME", "STATUS", "DURATION", "RUN ID", "MLFLOW RUN", "METRICS"], rows, rightAligned: [4]))
            return
        }
        writeOut(
            TextFormat.table(
                ["START", "EXPERIMENT", "NAME", "STATUS", "DURATION", "RUN ID", "METRICS"], rows, rightAligned: [4]))
    }

    /// The metrics `runs` shows for one run: the named ones, or up to three chosen (losses,
    /// then accuracies, then the rest; training before other contexts).
    static func keyMetrics(_ summaries: [(id: MetricID, stats: MetricStats)], named: [String]) -> [(
        name: String, last: Double?
    )] {
        func label(_ id: MetricID) -> String { id.context == "training" ? id.key : id.description }
        if !named.isEmpty {
            var out: [(name: String, last: Double?)] = []
            for n in named {
                let matches = summaries.filter { $0.id.description == n }
                let chosen = matches.isEmpty ? summaries.filter { $0.id.key == n } : matches
                if chosen.isEmpty { out.append((name: n, last: nil)) }
                for s in chosen { out.append((name: label(s.id), last: s.stats.last)) }
            }
            return out
        }
        func rank(_ id: MetricID) -> Int {
            let k = id.key.lowercased()
            let kind = k.contains("loss") ? 0 : (k.contains("acc") ? 1 : 2)
            return kind * 2 + (id.context == "training" ? 0 : 1)
        }
        let ordered = summaries.enumerated().sorted { a, b in
            let x = rank(a.element.id), y = rank(b.element.id)
            return x != y ? x < y : a.offset < b.offset
        }
        return ordered.prefix(3).map { (name: label($0.element.id), last: $0.element.stats.last) }
    }
}
