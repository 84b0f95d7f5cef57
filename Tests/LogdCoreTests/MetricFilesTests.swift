import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// The per-key metric files (`metrics/<key>_<context>_<source>.csv`, MetricFiles.swift) that a
/// run's end derives from its metrics.csv segments for yProv4ML's `get_metric`, with the real
/// daemon: their rows, their names, prov.json's references, a reopened run, a recovered one.
extension DaemonTests {
    /// Checks a finished run directory (argv[1]): every metric entity of prov.json points at a
    /// file under metrics/ that holds exactly the rows of its (context, key) in metrics.csv's
    /// segments, in order; metrics/ holds those files and nothing else. argv[2]: the expected
    /// file names (JSON). Prints `ok <files> <rows> <segments>`.
    static let metricFilesCheck = #"""
        import csv, glob, json, os, sys
        run = os.path.realpath(sys.argv[1])
        want_names = set(json.loads(sys.argv[2]))
        segments = sorted(glob.glob(os.path.join(run, "metrics.[0-9]*.csv"))) + [os.path.join(run, "metrics.csv")]
        rows = {}
        total = 0
        for seg in segments:
            with open(seg, newline="", encoding="utf-8") as f:
                r = csv.reader(f)
                assert next(r) == ["time", "step", "context", "key", "value", "rank", "source"], seg
                for t, step, context, key, value, rank, source in r:
                    rows.setdefault((context, key), []).append([step, value, t, rank, source])
                    total += 1
        with open(os.path.join(run, "prov.json"), encoding="utf-8") as f:
            doc = json.load(f)
        metrics = [e for e in doc["entity"].values() if e.get("prov:type") == "provml:Metric"]
        assert {(e["yprov:context"], e["prov:label"]) for e in metrics} == set(rows), (sorted(rows), metrics)
        names = set()
        for e in metrics:
            path = e["dcterms:identifier"]
            assert os.path.dirname(path) == os.path.join(run, "metrics"), e
            assert e["prov:location"] == "metrics/" + os.path.basename(path), e
            assert e["logd:metricsFile"] == os.path.join(run, "metrics.csv"), e
            assert int(e["yprov:file_size"]["$"]) == os.path.getsize(path), e
            with open(path, newline="", encoding="utf-8") as f:
                got = list(csv.reader(f))
            assert got[0] == ["epoch", "value", "timestep", "rank", "source"], (path, got[:2])
            assert got[1:] == rows[(e["yprov:context"], e["prov:label"])], (path, len(got) - 1)
            names.add(os.path.basename(path))
        assert names == want_names, (sorted(names), sorted(want_names))
        assert sorted(os.listdir(os.path.join(run, "metrics"))) == sorted(names), os.listdir(os.path.join(run, "metrics"))
        print("ok", len(names), total, len(segments))
        """#

    /// Runs the check on `dir` and returns (files, rows, segments), or nil on failure.
    private func checkMetricFiles(_ h: DaemonHarness, _ dir: String, _ names: [String]) throws -> [Int]? {
        let expected = String(decoding: try JSONSerialization.data(withJSONObject: names), as: UTF8.self)
        let (status, output) = try Self.python(h, Self.metricFilesCheck, [h.dataRoot + "/" + dir, expected])
        #expect(status == 0, "\(output)")
        guard status == 0, output.hasPrefix("ok ") else { return nil }
        return output.split(separator: " ").dropFirst().map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
    }

    @Test(
        "metrics/<key>_<context>_<source>.csv at a run's end: each holds exactly its (context, key)'s rows from every rotated segment, all ranks and sources, names sanitized and unique; prov.json points at them; a reopened run's next end rewrites them"
    )
    func perKeyMetricFiles() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let config = h.root + "/logd.yaml"
        try "rotate_bytes: 65536\n".write(toFile: config, atomically: true, encoding: .utf8)
        try h.start(["--config", config, "--log-level", "debug"])
        let r0 = try RawProducer(h, runID: "mf", experiment: "mf", name: "mf", rank: 0, worldSize: 2)
        // The first source of grad_norm is the encoder's (sources are listed in arrival order).
        try r0.metric("grad_norm", context: "training", source: "encoder", 0.5, step: nil)
        try r0.metric("a/b", context: "training", 1, step: 0)
        try r0.metric("a_b", context: "training", 2, step: 0)
        try r0.flush()
        let r1 = try RawProducer(h, runID: "mf", experiment: "mf", name: "mf", rank: 1, worldSize: 2)
        let odd = "top1, \"quoted\"\nkey"
        for i in 0..<1500 {
            try r0.metric("loss", context: "training", Double(i) * 0.5, step: Int64(i))
            try r1.metric("loss", context: "training", -Double(i), step: Int64(i))
            if i % 3 == 0 { try r0.metric("loss", context: "validation", Double(i) / 7, step: Int64(i)) }
            if i % 5 == 0 { try r0.metric("grad_norm", context: "training", source: "encoder", Double(i), step: nil) }
            if i % 7 == 6 { try r1.metric("grad_norm", context: "training", source: "decoder", i % 2 == 0 ? .nan : -.infinity, step: Int64(i)) }
            if i % 11 == 0 { try r0.metric(odd, context: "eval/set", source: "a b", Double(i) * 1e-300, step: Int64(i)) }
            if i % 13 == 0 { try r1.metric("val_loss", context: "training", 1.0 / Double(i + 1), step: Int64(i)) }
        }
        try r0.end()
        try r1.end()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        guard let dir = dirs.first else { return }
        #expect(h.read(dir + "/run.yaml").contains("status: finished"))
        var names = [
            "grad_norm_training_encoder_decoder.csv", "a_b_training_None.csv", "a_b_training_None_2.csv", "loss_training_None.csv",
            "loss_validation_None.csv", "top1___quoted__key_eval_set_a_b.csv", "val_loss_training_None.csv",
        ]
        let first = try checkMetricFiles(h, dir, names)
        // The first end renames the rows collected as metrics arrived (past 64 KiB a key's rows
        // went to its temp file mid-run); the reopened run's end below splits metrics.csv.
        #expect(h.daemonStderr().contains("rows, collected as they arrived"), "\(h.daemonStderr())")
        #expect(first?[0] == 7)
        #expect(first?[1] == 3 + 3000 + 500 + 300 + 214 + 137 + 116, "\(String(describing: first))")
        #expect((first?[2] ?? 0) >= 3, "the run rotated metrics.csv: \(String(describing: first))")

        // A late producer reopens the run; its end rewrites every file (and adds its new key's).
        let late = try RawProducer(h, runID: "mf", experiment: "mf", name: "mf")  // a late fork of rank 0
        for i in 0..<50 {
            try late.metric("loss", context: "training", 100 + Double(i), step: Int64(1500 + i))
            try late.metric("lr", context: "training", 0.1, step: Int64(i))
        }
        try late.end()
        #expect(h.runDirectories() == [dir])
        names.append("lr_training_None.csv")
        let second = try checkMetricFiles(h, dir, names)
        #expect(h.daemonStderr().contains("rows, split from metrics.csv"))
        #expect(second?[0] == 8)
        #expect(second?[1] == (first?[1] ?? 0) + 100)
        #expect(h.stop() == 0)
    }

    @Test("a run whose collected rows pass 2 MiB (written to the journal mid-run) gets the same metric files: every row once, in order")
    func metricFilesFromJournal() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start(["--log-level", "debug"])
        let p = try h.producer(["--run-id", "journal", "--experiment", "mf", "--metrics", "150000", "--keys", "7", "--batch", "100"])
        #expect(waitAll([p]))
        try h.flush()
        let dir = h.runDirectories().first ?? ""
        let names = (0..<7).map { "m\($0)_training_None.csv" }
        let result = try checkMetricFiles(h, dir, names)
        #expect(result?[0] == 7)
        #expect(result?[1] == 150_000)
        #expect(h.daemonStderr().contains("metrics/ 150000 rows, collected as they arrived"), "\(h.daemonStderr())")
        #expect(!FileManager.default.fileExists(atPath: h.dataRoot + "/" + dir + "/metrics/.keyrows.journal.tmp"))
        #expect(h.stop() == 0)
    }

    @Test("a run that ended just before a kill -9 and before its metrics/ files gets them when the restart finishes it")
    func metricFilesAfterRecovery() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        h.environment = ["LOGD_FAULT_POINT": "before-metric-files"]
        try h.start()
        let p = try RawProducer(h, runID: "mf-crash", experiment: "mf", name: "crash")
        for i in 0..<200 {
            try p.metric("loss", context: "training", Double(i), step: Int64(i))
            if i % 4 == 0 { try p.metric("acc", context: "validation", source: "eval", Double(i) / 200, step: Int64(i)) }
        }
        try p.send([.runEnd(RunEnd(status: .finished, timestamp: 1_700_000_100_000_000_000))])
        #expect(h.waitForExit(timeout: 60), "logd reached the fault point before-metric-files")
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        guard let dir = dirs.first else { return }
        #expect(!FileManager.default.fileExists(atPath: h.dataRoot + "/" + dir + "/metrics/loss_training_None.csv"))
        h.environment = [:]
        try h.start()
        try h.flush()
        #expect(h.read(dir + "/run.yaml").contains("status: finished"))
        let counts = try checkMetricFiles(h, dir, ["loss_training_None.csv", "acc_validation_eval.csv"])
        #expect(counts?[0] == 2 && counts?[1] == 250, "\(String(describing: counts))")
        #expect(h.stop() == 0)
    }

    @Test(
        "a run's end finishes in the background: a flush returns while its metrics/ files are held back, the producer's FLUSH_DONE and last acknowledgement wait for them, and a producer that joins meanwhile reopens the same directory"
    )
    func runEndOffTheWritersPath() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let hold = h.root + "/hold-finisher"
        #expect(FileManager.default.createFile(atPath: hold, contents: nil))
        h.environment = ["LOGD_FAULT_HOLD": "finish-run:" + hold]
        try h.start()
        let p = try RawProducer(h, runID: "held", experiment: "mf", name: "held")
        for i in 0..<100 { try p.metric("loss", context: "training", Double(i), step: Int64(i)) }
        let before = try p.flush().durableThrough
        try p.send([.runEnd(RunEnd(status: .finished, timestamp: 1_700_000_100_000_000_000))])
        // The finisher is held at the start of the run's job: a flush still completes, with the
        // record and run.yaml on disk and the derived files not yet written.
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        guard let dir = dirs.first else { return }
        #expect(h.read(dir + "/run.yaml").contains("status: finished"))
        #expect(metricRows(h.read(dir + "/metrics.csv")).count == 100)
        #expect(!FileManager.default.fileExists(atPath: h.dataRoot + "/" + dir + "/metrics/loss_training_None.csv"))
        let active = (try? FileManager.default.contentsOfDirectory(atPath: h.dataRoot + "/.logd/active")) ?? []
        #expect(active.count == 1, "the run's marker stays active until it is finished: \(active)")
        // The producer's FLUSH after its RUN_END: the barrier completes (the writer is free, as
        // the control flush showed), but FLUSH_DONE waits for the run's last acknowledgement.
        #expect(throws: DaemonHarness.HarnessError.self, "no FLUSH_DONE while the run's end is held") { try p.flush(timeoutMs: 500) }
        try h.flush()
        // A late producer of the same run id joins while the job is held; the writer takes its
        // join only after the job is done.
        let late = try RawProducer(h, runID: "held", experiment: "mf", name: "held")
        try late.metric("loss", context: "training", 100, step: 100)
        try FileManager.default.removeItem(atPath: hold)
        let after = try p.flush()
        #expect(after.durableThrough == before + 1, "RUN_END is acknowledged once the run is finished")
        try late.end()
        #expect(h.runDirectories() == [dir], "the late producer reopened the same directory")
        #expect(metricRows(h.read(dir + "/metrics.csv")).count == 101)
        let counts = try checkMetricFiles(h, dir, ["loss_training_None.csv"])
        #expect(counts?[0] == 1 && counts?[1] == 101, "\(String(describing: counts))")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: h.dataRoot + "/.logd/active")) == [])
        #expect(h.stop() == 0)
    }
}
