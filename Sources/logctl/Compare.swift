import ArgumentParser
import LogdRead
import LogdSystem
import Wire

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the runs of an experiment: one row per run, the params that differ, the chosen metrics.",
        discussion: """
            Params come from each run's config.yaml, flattened to dotted keys (optimizer.lr); only keys whose \
            values differ between the runs get a column. Metrics: every metric's last value by default, or the \
            ones named with --metric (a key, or context/key such as validation/accuracy; key[source] for one \
            source of a key logged from several, such as grad_norm[fc.weight]). A metric column is \
            named by its key when that key is in one context only, else context/key. --sort orders by a column \
            (name, run_id, status, start, a param or a metric), ascending (lowest loss first), --desc for \
            descending; runs without a value come last either way. Default order: by start time. Formats: \
            table (aligned), md (GitHub markdown), csv (RFC 4180, exact numbers), json (shape: docs/LOGCTL.md).
            """)

    @OptionGroup var disk: DataRootOptions

    @Argument(help: "The experiment (as the producers named it, or its folder under the data root).")
    var experiment: String

    @Option(
        name: .customLong("metric"),
        help: "A metric column (key, context/key, or key[source]); repeat for more. Default: every metric.")
    var metrics: [String] = []

    @Option(help: "Sort by this column: name, run_id, status, start, a param (optimizer.lr) or a metric.")
    var sort: String?

    @Flag(help: "Sort descending (highest first).")
    var desc = false

    @Option(help: "Which value of each metric: last, min, max or count.")
    var stat = "last"

    @Option(help: "Output format: table, md, csv or json.")
    var format = "table"

    func validate() throws {
        guard Comparison.Format(rawValue: format) != nil else {
            throw ValidationError("--format must be table, md, csv or json, not '\(format)'")
        }
        guard Comparison.Stat(rawValue: stat) != nil else {
            throw ValidationError("--stat must be last, min, max or count, not '\(stat)'")
        }
    }

    func run() throws {
        let runs = RunCatalog.experiment(experiment, root: disk.path)
        guard !runs.isEmpty else {
            FileOutput.stderr("logctl: no runs of experiment \(experiment) under \(disk.path)\n")
            throw ExitCode(LogctlExit.runNotFound)
        }
        let comparison: Comparison
        do {
            comparison = try Comparison(
                experiment: experiment, runs: runs, metricNames: metrics, stat: Comparison.Stat(rawValue: stat)!,
                sort: sort,
                descending: desc)
        } catch {
            FileOutput.stderr("logctl: \(error)\n")
            throw ExitCode(LogctlExit.usage)
        }
        for name in comparison.unmatched {
            FileOutput.stderr("logctl: no run of \(experiment) has a metric \(name)\n")
        }
        writeOut(comparison.render(Comparison.Format(rawValue: format)!))
    }
}
