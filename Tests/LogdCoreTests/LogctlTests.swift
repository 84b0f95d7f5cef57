import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// logctl against real runs: logd-demo and wire-producer write them through the real daemon,
/// then the `logctl` binary reads them back (runs, show, compare, tail) from the files alone.
extension DaemonTests {
    struct ToolResult {
        var code: Int32
        var out: String
        var err: String
    }

    /// Runs `logctl` with `arguments` (and extra environment), output captured through files.
    static func logctl(_ h: DaemonHarness, _ arguments: [String], environment: [String: String] = [:]) throws
        -> ToolResult
    {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logctl"))
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["LOGD_SOCKET"] = nil
        env["LOGD_DATA_ROOT"] = nil
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let outPath = h.root + "/logctl.out", errPath = h.root + "/logctl.err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer {
            try? out.close()
            try? err.close()
        }
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        return ToolResult(
            code: p.terminationStatus, out: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// Splits RFC 4180 CSV text into rows of fields.
    static func csvRows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        MetricsCSV.forEachRecord(Array(text.utf8)) { fields in
            rows.append(fields.map { String(decoding: $0, as: UTF8.self) })
        }
        return rows
    }

    /// The last training loss of a run, read straight from its metrics.csv segments.
    static func lastLoss(_ h: DaemonHarness, _ dir: String) -> Double? {
        var last: Double?
        for segment in h.segments(dir, stem: "metrics", ext: "csv") {
            for row in csvRows(segment).dropFirst() where row.count == 7 && row[2] == "training" && row[3] == "loss" {
                last = Double(row[4])
            }
        }
        return last
    }

    @Test("logctl runs, show and compare (table, md, csv, json) over real logd-demo runs with differing --lr")
    func logctlReadsDemoRuns() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let lrs = ["0.001", "0.01", "0.1"]
        for (i, lr) in lrs.enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd-demo"))
            p.arguments = [
                "--socket", h.socket, "--experiment", "sweep", "--name", "lr-\(i)", "--steps", "40", "--epochs", "2",
                "--lr", lr,
            ]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "logd-demo --lr \(lr)")
        }
        try h.flush()
        // Everything below reads the files alone: no daemon.
        #expect(h.stop() == 0)
        let dirs = h.runDirectories()
        try #require(dirs.count == 3, "\(dirs)")
        let hasConfig = dirs.allSatisfy {
            FileManager.default.fileExists(atPath: h.dataRoot + "/" + $0 + "/config.yaml")
        }
        #expect(hasConfig, "config.yaml is not written in this tree: compare has no params to show (not faked)")
        let root = ["--data-root", h.dataRoot]
        func runID(_ dir: String) -> String {
            RunDirectory.open(h.dataRoot + "/" + dir)?.runID ?? "?"
        }
        let byName = Dictionary(uniqueKeysWithValues: dirs.map { (RunDirectory.open(h.dataRoot + "/" + $0)!.name, $0) })

        // runs
        let runs = try Self.logctl(h, ["runs"] + root)
        #expect(runs.code == 0, "\(runs.err)")
        let lines = runs.out.split(separator: "\n")
        #expect(lines.first?.hasPrefix("START") == true && lines.count == 4, "\(runs.out)")
        for (i, _) in lrs.enumerated() {
            let line = lines.first { $0.contains(" lr-\(i) ") }
            #expect(line?.contains("finished") == true && line?.contains("sweep") == true, "\(runs.out)")
            #expect(line?.contains(runID(byName["lr-\(i)"]!)) == true && line?.contains("loss=") == true, "\(runs.out)")
        }
        let fromEnv = try Self.logctl(
            h, ["runs", "--experiment", "sweep", "--status", "finished", "--json"],
            environment: ["LOGD_DATA_ROOT": h.dataRoot])
        #expect(fromEnv.code == 0)
        let listed = try JSONSerialization.jsonObject(with: Data(fromEnv.out.utf8)) as? [[String: Any]]
        #expect(listed?.count == 3, "LOGD_DATA_ROOT: \(fromEnv.out) \(fromEnv.err)")
        #expect(Set(listed?.compactMap { $0["status"] as? String } ?? []) == ["finished"])
        let none = try Self.logctl(h, ["runs", "--status", "running"] + root)
        #expect(none.code == 0 && none.out.isEmpty && none.err.contains("no runs"), "\(none)")

        // show: by id prefix, folder name, path relative to the data root, absolute path
        let dir1 = byName["lr-1"]!
        let id1 = runID(dir1)
        let folder1 = String(dir1.split(separator: "/")[1])
        for name in [String(id1.prefix(8)), id1, folder1, dir1, h.dataRoot + "/" + dir1] {
            let show = try Self.logctl(h, ["show", name] + root)
            #expect(show.code == 0, "show \(name): \(show.err)")
            #expect(show.out.contains("run_id             \(id1)") || show.out.contains(id1), "show \(name)")
            #expect(show.out.contains("status") && show.out.contains("finished"))
        }
        let show = try Self.logctl(h, ["show", id1] + root)
        let out = show.out
        #expect(out.contains("experiment") && out.contains("sweep") && out.contains("lr-1"), "\(out)")
        if hasConfig { #expect(out.contains("optimizer.lr: 0.01"), "\(out)") }
        for metric in ["training/loss", "training/grad_norm", "validation/accuracy"] {
            let line = out.split(separator: "\n").first { $0.contains(metric) }
            #expect(line != nil, "no summary line for \(metric): \(out)")
            // count, last, min, max, steps, sparkline
            let sparkChars = Set("▁▂▃▄▅▆▇█")
            #expect(line?.contains(where: { sparkChars.contains($0) }) == true, "no sparkline: \(line ?? "")")
        }
        let lossLine = out.split(separator: "\n").first { $0.contains("training/loss") }.map(String.init) ?? ""
        #expect(lossLine.contains(" 80 ") && lossLine.contains("0..79"), "loss: 80 samples, steps 0..79: \(lossLine)")
        let spark = lossLine.filter { Set("▁▂▃▄▅▆▇█").contains($0) }
        #expect(spark.count == 40 && spark.first == "█" && spark.last == "▁", "a falling loss, 40 cells: \(spark)")
        #expect(out.contains("SmallCNN") && out.contains("v2"), "models and versions: \(out)")

        // show --json: one document with run.yaml, the config and the same summaries.
        let showJSON = try Self.logctl(h, ["show", id1, "--json"] + root)
        #expect(showJSON.code == 0, "\(showJSON.err)")
        let showDoc = try JSONSerialization.jsonObject(with: Data(showJSON.out.utf8)) as? [String: Any]
        #expect((showDoc?["run"] as? [String: Any])?["run_id"] as? String == id1, "\(showJSON.out.prefix(300))")
        let loss = (showDoc?["metrics"] as? [[String: Any]])?.first { $0["key"] as? String == "loss" && $0["context"] as? String == "training" }
        #expect(loss?["count"] as? Int == 80 && loss?["first_step"] as? Int == 0 && loss?["last_step"] as? Int == 79, "\(String(describing: loss))")
        if hasConfig { #expect(((showDoc?["config"] as? [String: Any])?["optimizer"] as? [String: Any])?["lr"] as? Double == 0.01) }

        // compare: a column for the param that differs (optimizer.lr) and the metrics
        let table = try Self.logctl(h, ["compare", "sweep"] + root)
        #expect(table.code == 0, "\(table.err)")
        let header = table.out.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.contains("loss") && header.contains("accuracy"), "\(table.out)")
        #expect(!header.contains("optimizer.type") && !header.contains("seed"), "only params that differ: \(header)")
        if hasConfig { #expect(header.contains("optimizer.lr"), "\(table.out)") }

        let md = try Self.logctl(h, ["compare", "sweep", "--format", "md"] + root)
        let mdLines = md.out.split(separator: "\n")
        #expect(md.code == 0 && mdLines.count == 5, "\(md.out)")
        #expect(
            mdLines.first?.hasPrefix("| name | run_id | status |") == true && mdLines[1].contains("---"), "\(md.out)")
        if hasConfig { #expect(mdLines.first?.contains("| optimizer.lr |") == true, "\(md.out)") }

        let csv = try Self.logctl(h, ["compare", "sweep", "--format", "csv", "--sort", "loss"] + root)
        #expect(csv.code == 0, "\(csv.err)")
        let rows = Self.csvRows(csv.out)
        try #require(rows.count == 4, "\(csv.out)")
        let lossCol = try #require(rows[0].firstIndex(of: "loss"), "\(rows[0])")
        var losses: [Double] = []
        for row in rows.dropFirst() {
            let dir = byName[row[0]]!
            let loss = try #require(Double(row[lossCol]))
            #expect(loss == Self.lastLoss(h, dir), "csv loss of \(row[0]) is the last loss in metrics.csv")
            losses.append(loss)
            if hasConfig, let lrCol = rows[0].firstIndex(of: "optimizer.lr") {
                #expect(row[lrCol] == lrs[Int(row[0].dropFirst(3))!], "\(row)")
            }
        }
        #expect(losses == losses.sorted(), "--sort loss is ascending: \(losses)")
        if hasConfig {
            let sorted = try Self.logctl(
                h, ["compare", "sweep", "--format", "csv", "--sort", "optimizer.lr", "--desc"] + root)
            #expect(Self.csvRows(sorted.out).dropFirst().map { $0[0] } == ["lr-2", "lr-1", "lr-0"], "\(sorted.out)")
        }

        let json = try Self.logctl(
            h, ["compare", "sweep", "--format", "json", "--metric", "loss", "--metric", "validation/accuracy"] + root)
        #expect(json.code == 0, "\(json.err)")
        let doc = try #require(
            try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any], "\(json.out)")
        #expect(doc["experiment"] as? String == "sweep")
        #expect(doc["metrics"] as? [String] == ["loss", "accuracy"], "\(json.out)")
        if hasConfig { #expect(doc["params"] as? [String] == ["optimizer.lr"], "\(json.out)") }
        let jsonRuns = try #require(doc["runs"] as? [[String: Any]])
        #expect(jsonRuns.count == 3)
        for r in jsonRuns {
            let name = r["name"] as? String ?? "?"
            let metrics = r["metrics"] as? [String: Any]
            // JSONSerialization on Linux may read a double 1 ulp off: compare closely, not exactly
            // (the csv check above is exact).
            let loss = metrics?["loss"] as? Double ?? .nan, expected = Self.lastLoss(h, byName[name] ?? "") ?? 0
            #expect(abs(loss - expected) <= 1e-15 * abs(expected), "\(name): \(loss) vs \(expected)")
            #expect(metrics?["accuracy"] as? Double != nil)
            if hasConfig {
                let lr = (r["params"] as? [String: Any])?["optimizer.lr"] as? Double
                #expect(lr == Double(lrs[Int(name.dropFirst(3)) ?? 0]), "\(name): \(r)")
            }
            #expect(r["run_id"] as? String == runID(byName[name] ?? ""))
        }
    }

    @Test("logctl show: a key logged from several sources (per-parameter grad norms) gets a row per source, and --json lists them")
    func showPerSourceMetrics() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try RawProducer(h, runID: "sources", experiment: "src", name: "sources")
        for step in 0..<10 {
            try p.metric("grad_norm", source: "layer1.weight", Double(step), step: Int64(step))
            try p.metric("grad_norm", source: "layer2.weight", Double(100 + step), step: Int64(step))
            try p.metric("loss", Double(10 - step), step: Int64(step))
        }
        try p.end()
        let root = ["--data-root", h.dataRoot]
        let show = try Self.logctl(h, ["show", "sources", "--width", "0"] + root)
        #expect(show.code == 0, "\(show.err)")
        let lines = show.out.split(separator: "\n").map(String.init)
        let l1 = lines.first { $0.contains("[layer1.weight]") } ?? ""
        let l2 = lines.first { $0.contains("[layer2.weight]") } ?? ""
        #expect(l1.contains(" 10 ") && l1.contains(" 9 "), "layer1: 10 samples, last 9: \(show.out)")
        #expect(l2.contains(" 10 ") && l2.contains(" 109 "), "layer2: 10 samples, last 109: \(show.out)")
        #expect(!lines.contains { $0.contains("loss") && $0.contains("[") }, "a single-source key gets no source rows")
        let json = try Self.logctl(h, ["show", "sources", "--json"] + root)
        let doc = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        let grad = (doc?["metrics"] as? [[String: Any]])?.first { $0["key"] as? String == "grad_norm" }
        let sources = (grad?["sources"] as? [[String: Any]])?.compactMap { $0["source"] as? String }
        #expect(sources == ["layer1.weight", "layer2.weight"], "\(json.out.prefix(400))")
        #expect(grad?["count"] as? Int == 20)
        // compare: one source of the key as a column, by key[source].
        let compare = try Self.logctl(h, ["compare", "src", "--metric", "grad_norm[layer2.weight]", "--format", "csv"] + root)
        #expect(compare.code == 0, "\(compare.err)")
        #expect(compare.out.contains("grad_norm[layer2.weight]") && compare.out.contains(",109"), "\(compare.out)")
        #expect(h.stop() == 0)
    }

    @Test("logctl status --openmetrics parses with the Prometheus client's OpenMetrics parser and matches the JSON document")
    func statusOpenMetrics() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try h.producer(["--run-id", "om", "--experiment", "om", "--metrics", "500", "--end", "none"])
        #expect(waitAll([p]))
        try h.flush()
        let result = try Self.logctl(h, ["status", "--socket", h.socket, "--openmetrics"])
        #expect(result.code == 0, "\(result.err)")
        let script = h.root + "/om.py"
        try """
        import sys
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
        samples = {s.name: s.value for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples}
        assert samples["logd_records_total"] >= 500, samples
        assert samples["logd_connections_accepted_total"] >= 2, samples
        assert samples['logd_writes_blocked'] == 0, samples
        print(int(samples["logd_records_total"]))
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let metricsFile = h.root + "/status.om"
        try result.out.write(toFile: metricsFile, atomically: true, encoding: .utf8)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", script, metricsFile]
        let out = Pipe()
        check.standardOutput = out
        try check.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(check.terminationStatus == 0, "the OpenMetrics parser accepts it: \(result.out)")
        let status = try h.status()
        if case .int(let records)? = status["totals"]?["records"] {
            #expect(Int64(printed.trimmingCharacters(in: .whitespacesAndNewlines)) == records)
        }
        #expect(h.stop() == 0)
    }

    /// A running `logctl tail …` whose stdout goes to `outPath`; killed (and its file closed) by `stop()`.
    final class TailProcess {
        let process = Process()
        private let out: FileHandle

        init(_ arguments: [String], outPath: String) throws {
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            process.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logctl"))
            process.arguments = ["tail"] + arguments
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            try? out.close()
        }
    }

    @Test("logctl tail -f ends by itself, exit 0, once the run ends, after printing every line")
    func logctlTailEndsWithTheRun() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        // Rank 0 of 2 ends; the run keeps running until rank 1 has ended too.
        let first = try h.producer(["--run-id", "tail-end", "--experiment", "tail", "--rank", "0", "--world-size", "2", "--logs", "50"])
        #expect(waitAll([first]) && first.terminationStatus == 0)
        let outPath = h.root + "/tail-end.out"
        let tailing = try TailProcess(["tail-end", "-f", "--data-root", h.dataRoot, "--interval", "0.05"], outPath: outPath)
        defer { tailing.stop() }
        let tail = tailing.process
        usleep(1_200_000)  // tail has looked at run.yaml at least once while the run runs
        #expect(tail.isRunning, "tail -f keeps following a running run")
        let second = try h.producer(["--run-id", "tail-end", "--experiment", "tail", "--rank", "1", "--world-size", "2", "--logs", "70"])
        #expect(waitAll([second]) && second.terminationStatus == 0)
        try h.flush()
        let deadline = Date().addingTimeInterval(20)
        while tail.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!tail.isRunning, "tail -f ends when the run ends")
        if !tail.isRunning { #expect(tail.terminationReason == .exit && tail.terminationStatus == 0) }
        let lines = ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.count == 120, "every line of both ranks, once: \(lines.count)")
        #expect(h.stop() == 0)
    }

    @Test("logctl tail -f follows main.log across rotations: every line exactly once, in order; SIGTERM ends it with 0")
    func logctlTailFollowsRotations() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let config = h.root + "/logd.yaml"
        try "rotate_bytes: 4096\nack_interval_ms: 10\n".write(toFile: config, atomically: true, encoding: .utf8)
        try h.start(["--config", config])
        // Rank 0 of 2 ends: the run stays running, with main.log rotated a few times already.
        let first = try h.producer([
            "--run-id", "tail-run", "--experiment", "tail", "--name", "t", "--rank", "0", "--world-size", "2",
            "--metrics", "300",
            "--logs", "300",
        ])
        #expect(waitAll([first]) && first.terminationStatus == 0)
        let dir = try #require(h.runDirectories().first)
        let runPath = h.dataRoot + "/" + dir
        func logSegments() -> Int { RunDirectory.segments(in: runPath, stem: "main", ext: "log").count }
        let before = logSegments()
        #expect(before >= 2, "rotated before tail starts")

        let outPath = h.root + "/tail.out"
        let tailing = try TailProcess(
            ["tail-run", "-f", "--forever", "--data-root", h.dataRoot, "--interval", "0.05"], outPath: outPath)
        defer { tailing.stop() }
        let tail = tailing.process
        func outputLines() -> [Substring] {
            ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "").split(separator: "\n")
        }
        func waitForLines(_ n: Int, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if outputLines().count >= n { return true }
                usleep(20_000)
            }
            return false
        }
        #expect(waitForLines(300, timeout: 20), "tail printed \(outputLines().count) of 300 existing lines")

        // Rank 1 logs 3000 more lines while tail follows: dozens of rotations.
        let second = try h.producer([
            "--run-id", "tail-run", "--experiment", "tail", "--name", "t", "--rank", "1", "--world-size", "2",
            "--metrics", "3000",
            "--logs", "3000",
        ])
        #expect(waitAll([second]) && second.terminationStatus == 0)
        try h.flush()
        #expect(
            logSegments() > before + 10, "main.log rotated while tail followed (\(before) → \(logSegments()) segments)")
        _ = waitForLines(3300, timeout: 30)
        usleep(300_000)  // anything extra (a duplicate) would show up now

        kill(tail.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while tail.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!tail.isRunning, "tail -f did not exit on SIGTERM")
        if !tail.isRunning {
            #expect(tail.terminationReason == .exit && tail.terminationStatus == 0, "SIGTERM: a clean exit 0")
        }

        var byRank: [Int: [Int]] = [:]
        for line in outputLines() {
            // "<time> INFO [rank r] train: rank r line j"
            let words = line.split(separator: " ")
            guard words.count == 9, let r = Int(words[6]), let j = Int(words[8]) else {
                Issue.record("unexpected line from tail: \(line)")
                continue
            }
            byRank[r, default: []].append(j)
        }
        #expect(
            byRank[0] == Array(0..<300), "rank 0: \(byRank[0]?.count ?? 0) lines, unique \(Set(byRank[0] ?? []).count)")
        #expect(
            byRank[1] == Array(0..<3000), "rank 1: \(byRank[1]?.count ?? 0) lines, unique \(Set(byRank[1] ?? []).count)"
        )

        // --metrics (no -f): the header once, then every row of every segment.
        let metrics = try Self.logctl(h, ["tail", "tail-run", "--metrics", "--data-root", h.dataRoot])
        let rows = metrics.out.split(separator: "\n")
        #expect(metrics.code == 0 && rows.first == "time,step,context,key,value,rank,source")
        #expect(rows.filter { $0.hasPrefix("time,") }.count == 1 && rows.count == 1 + 3300, "\(rows.count) lines")
        let lastTwo = try Self.logctl(h, ["tail", "tail-run", "-n", "2", "--data-root", h.dataRoot])
        #expect(
            lastTwo.out.split(separator: "\n").map { $0.split(separator: " ").last ?? "" } == ["2998", "2999"],
            "\(lastTwo.out)")
        #expect(h.stop() == 0)
    }

    @Test(
        "logctl errors: an unknown run exits 4 with one line; status and flush without a daemon exit 3 naming the socket"
    )
    func logctlErrors() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try FileManager.default.createDirectory(atPath: h.dataRoot, withIntermediateDirectories: true)
        func oneLine(_ s: String) -> Bool { s.hasSuffix("\n") && s.dropLast().firstIndex(of: "\n") == nil }
        for args in [
            ["show", "no-such-run"], ["tail", "no-such-run"], ["tail", "no-such-run", "-f"],
            ["compare", "no-such-experiment"],
        ] {
            let r = try Self.logctl(h, args + ["--data-root", h.dataRoot])
            #expect(r.code == 4, "\(args): exit \(r.code)")
            #expect(oneLine(r.err) && r.err.contains("no-such-"), "\(args): \(r.err)")
            #expect(r.out.isEmpty)
        }
        for args in [["status"], ["status", "--json"], ["flush"], ["flush", "--run", "x", "--timeout", "1"]] {
            let r = try Self.logctl(h, args + ["--socket", h.socket])
            #expect(r.code == 3, "\(args): exit \(r.code)")
            #expect(oneLine(r.err) && r.err.contains(h.socket) && r.err.contains("not running"), "\(args): \(r.err)")
            let env = try Self.logctl(h, args, environment: ["LOGD_SOCKET": h.socket])
            #expect(env.code == 3 && env.err.contains(h.socket), "LOGD_SOCKET, \(args): \(env.err)")
        }
        let usage = try Self.logctl(h, ["compare", "--data-root", h.dataRoot])
        #expect(usage.code == 2, "a missing argument is a usage error: \(usage.code)")
        let badFormat = try Self.logctl(h, ["compare", "x", "--format", "xml", "--data-root", h.dataRoot])
        #expect(badFormat.code == 2, "\(badFormat.err)")
    }
}
