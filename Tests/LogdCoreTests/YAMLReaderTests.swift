import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// The reading side without a daemon: YAMLReader, run lookup, metrics.csv, segment following.
@Suite("reading runs")
struct ReadingTests {
    static let sample = """
        ---
        nulls: [~, null, Null, NULL]
        empty:
        bools: [true, True, TRUE, false, yes, Yes, no, NO, on, On, off, OFF]
        not_bools: [y, n, Y, tRUE, yES]
        ints: [0, 42, -17, +5, 1_000, 0x1F, -0x10, 0b101, 017, 0, 190:20:30, 9223372036854775807]
        edge_ints: [0o17, 09, 1__, 0x, 1e5, 12abc]
        floats: [1.0, -2.5, 1., .5, 1.0e-05, 6.02e+23, 1_000.5, .inf, -.inf, +.Inf, 190:20:30.15, .nan, .NaN]
        not_floats: [1e-5, -.5, .e5, "1.0", 'true', inf, nan]
        strings: [hello world, "quoted: yes", 'single', 2026-11-22, 2026-11-22T22:40:01.123Z, "", '~']
        block: |
          line one
          line two
        folded: >-
          folded
          text
        tagged: [!!str 42, !!int "7", !!float 3, !!bool "yes", !!null "", ! 12]
        base: &base {lr: 0.1, momentum: 0.9}
        derived:
          <<: *base
          lr: 0.01
        alias: *base
        1: int key
        nested:
          optimizer:
            lr: 1.0e-3
            betas: [0.9, 0.999]
        """

    @Test("YAMLReader resolves scalars the way PyYAML's safe_load does (YAML 1.1)")
    func yamlTypes() throws {
        let v = try YAMLReader.load(Self.sample)
        #expect(v["nulls"] == [nil, nil, nil, nil])
        #expect(v["empty"] == .null)
        #expect(v["bools"] == [true, true, true, false, true, true, false, false, true, true, false, false])
        #expect(v["not_bools"] == ["y", "n", "Y", "tRUE", "yES"])
        #expect(v["ints"] == [0, 42, -17, 5, 1000, 31, -16, 5, 15, 0, 685_230, .int(.max)])
        #expect(
            v["edge_ints"] == ["0o17", "09", 1, "0x", "1e5", "12abc"], "1__ is PyYAML's int 1; 0o17 stays a string")
        let sexagesimal: Double = 30.15 + 20 * 60 + 190 * 3600
        let floats: [Double] = [
            1.0, -2.5, 1.0, 0.5, 1e-05, 6.02e+23, 1000.5, .infinity, -.infinity, .infinity, sexagesimal, .nan, .nan,
        ]
        #expect(v["floats"] == .list(floats.map(Value.double)))
        #expect(v["not_floats"] == ["1e-5", "-.5", ".e5", "1.0", "true", "inf", "nan"])
        #expect(
            v["strings"] == ["hello world", "quoted: yes", "single", "2026-11-22", "2026-11-22T22:40:01.123Z", "", "~"])
        #expect(v["block"] == "line one\nline two\n")
        #expect(v["folded"] == "folded text")
        #expect(v["tagged"] == ["42", 7, 3.0, true, nil, 12], "PyYAML resolves `! 12` as a plain scalar")
        #expect(v["derived"] == ["lr": 0.01, "momentum": 0.9])
        #expect(v["alias"] == ["lr": 0.1, "momentum": 0.9])
        #expect(v["1"] == "int key")
        #expect(v["nested"]?["optimizer"]?["lr"] == 0.001)
        #expect(try YAMLReader.load("") == .null)
        #expect(try YAMLReader.load("--- 3\n") == 3)
        #expect(throws: YAMLReader.Failure.self) { try YAMLReader.load("a: [1, 2\n") }
        #expect(throws: YAMLReader.Failure.self) { try YAMLReader.load("a: *nope\n") }
    }

    @Test("YAMLReader agrees with PyYAML on a sample document, leaf by leaf")
    func yamlMatchesPyYAML() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("logd-yaml-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // PyYAML makes dates of unquoted timestamps; a value tree has no date type (strings here).
        let doc = Self.sample.replacingOccurrences(of: "2026-11-22, 2026-11-22T22:40:01.123Z, ", with: "")
        let path = dir.appendingPathComponent("sample.yaml").path
        try doc.write(toFile: path, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            """
            import sys, yaml, json
            def leaves(v, path):
                if isinstance(v, dict):
                    for k, x in v.items(): yield from leaves(x, path + [str(k)])
                elif isinstance(v, list):
                    for i, x in enumerate(v): yield from leaves(x, path + [str(i)])
                else:
                    yield ['/'.join(path), type(v).__name__, repr(v) if not isinstance(v, str) else v]
            print(json.dumps(list(leaves(yaml.safe_load(open(sys.argv[1])), []))))
            """, path,
        ]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "python3 with PyYAML is needed (pip install pyyaml)")
        let expected = try #require(try JSONSerialization.jsonObject(with: data) as? [[String]])
        func leaves(_ v: Value, _ path: [String]) -> [(String, Value)] {
            switch v {
            case .map(let m): m.flatMap { leaves($0.value, path + [$0.key]) }
            case .list(let l): l.enumerated().flatMap { leaves($0.element, path + [String($0.offset)]) }
            default: [(path.joined(separator: "/"), v)]
            }
        }
        let mine = leaves(try YAMLReader.load(doc), [])
        #expect(mine.count == expected.count)
        for (m, e) in zip(mine, expected) {
            #expect(m.0 == e[0], "path")
            switch (m.1, e[1]) {
            case (.null, "NoneType"): break
            case (.bool(let b), "bool"): #expect((b ? "True" : "False") == e[2], "\(e)")
            case (.int(let i), "int"): #expect(String(i) == e[2], "\(e)")
            case (.double(let d), "float"):
                let py = Double(e[2]) ?? (e[2] == "inf" ? .infinity : e[2] == "-inf" ? -.infinity : .nan)
                #expect(d == py || (d.isNaN && py.isNaN), "\(e)")
            case (.string(let s), "str"): #expect(s == e[2], "\(e)")
            default: Issue.record("\(m.0): mine \(m.1), PyYAML \(e[1]) \(e[2])")
            }
        }
    }

    /// A data root with hand-made runs (run.yaml only) in a temporary directory.
    final class FakeRoot {
        let root: String
        init() throws {
            root =
                FileManager.default.temporaryDirectory.appendingPathComponent(
                    "logd-read-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                ).path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }

        @discardableResult
        func run(
            _ experiment: String, _ folder: String, id: String, start: String, status: String = "finished", name: String? = nil
        ) throws
            -> String
        {
            let dir = root + "/" + experiment + "/" + folder
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let yaml =
                "---\nrun_id: \"\(id)\"\nname: \(name ?? folder)\nexperiment: \(experiment)\nstatus: \(status)\nstart_time: \"\(start)\"\nend_time: null\n"
            try yaml.write(toFile: dir + "/run.yaml", atomically: true, encoding: .utf8)
            return dir
        }
    }

    @Test("a RUN is found by id, unique id prefix, folder name, run name or path; ambiguous and unknown names are errors")
    func runLookup() throws {
        let f = try FakeRoot()
        let a = try f.run("exp", "2026-01-01_00-00-00_a", id: "abc-1", start: "2026-01-01T00:00:00.000Z")
        try f.run("exp", "2026-01-01_00-00-01_b", id: "abc-2", start: "2026-01-01T00:00:01.000Z", status: "running")
        try f.run("other", "2026-01-01_00-00-02_c", id: "zed", start: "2026-01-01T00:00:02.000Z")
        try FileManager.default.createDirectory(atPath: f.root + "/.logd/active", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: f.root + "/exp/not-a-run", withIntermediateDirectories: true)
        #expect(RunCatalog.scan(root: f.root).map(\.runID) == ["abc-1", "abc-2", "zed"])
        #expect(RunCatalog.experiment("exp", root: f.root).count == 2)
        for name in ["abc-1", "2026-01-01_00-00-00_a", "exp/2026-01-01_00-00-00_a", a, a + "/"] {
            #expect((try? RunCatalog.find(name, root: f.root))?.runID == "abc-1", "\(name)")
        }
        #expect((try? RunCatalog.find("z", root: f.root))?.runID == "zed")
        #expect(throws: RunCatalog.LookupError.self) { try RunCatalog.find("abc", root: f.root) }
        #expect(throws: RunCatalog.LookupError.self) { try RunCatalog.find("nope", root: f.root) }
        #expect(throws: RunCatalog.LookupError.self) { try RunCatalog.find("/nonexistent/run", root: f.root) }
        do {
            _ = try RunCatalog.find("abc", root: f.root)
        } catch {
            #expect("\(error)".contains("ambiguous") && !"\(error)".contains("\n"))
        }
        // By the run's name (run.yaml), alone or as experiment/name; two runs of one name are ambiguous.
        try f.run("names", "2026-01-02_00-00-00_baseline", id: "n-1", start: "2026-01-02T00:00:00.000Z", name: "baseline")
        try f.run("names", "2026-01-02_00-00-01_sweep", id: "n-2", start: "2026-01-02T00:00:01.000Z", name: "sweep")
        try f.run("more", "2026-01-02_00-00-02_sweep", id: "n-3", start: "2026-01-02T00:00:02.000Z", name: "sweep")
        #expect((try? RunCatalog.find("baseline", root: f.root))?.runID == "n-1")
        #expect((try? RunCatalog.find("more/sweep", root: f.root))?.runID == "n-3")
        #expect(throws: RunCatalog.LookupError.self) { try RunCatalog.find("sweep", root: f.root) }
        let b = try RunCatalog.find("abc-2", root: f.root)
        #expect(
            b.status == "running" && b.endTime == nil && b.experiment == "exp"
                && b.relative == "exp/2026-01-01_00-00-01_b")
    }

    @Test(
        "metrics.csv: RFC 4180 quoting, a header per segment, an incomplete last row left out; summary.yaml preferred")
    func metricsCSV() throws {
        let f = try FakeRoot()
        let dir = try f.run("e", "r", id: "r1", start: "2026-01-01T00:00:00.000Z")
        let header = "time,step,context,key,value,rank,source\n"
        try
            (header
            + "t,0,training,loss,2.0,0,\nt,1,training,loss,1.0,0,\nt,,validation,\"acc, top-1\",0.5,0,\"a \"\"b\"\"\"\n")
            .write(toFile: dir + "/metrics.000001.csv", atomically: true, encoding: .utf8)
        try
            (header
            + "t,2,training,loss,nan,0,\nt,3,training,loss,0.5,0,\nt,4,training,loss,-inf,0,\nt,5,training,loss,0.25,0,\nt,6,training,lo")
            .write(toFile: dir + "/metrics.csv", atomically: true, encoding: .utf8)
        let run = try #require(RunDirectory.open(dir))
        #expect(
            run.segments(stem: "metrics", ext: "csv").map { $0.split(separator: "/").last! } == [
                "metrics.000001.csv", "metrics.csv",
            ])
        let series = MetricsReader.series(run)
        #expect(series.map(\.id.description) == ["training/loss", "validation/acc, top-1"])
        let loss = series[0].stats
        #expect(loss.count == 6 && loss.firstStep == 0 && loss.lastStep == 5 && loss.last == 0.25)
        #expect(loss.min == -.infinity && loss.max == 2.0, "NaN ignored by min and max")
        #expect(series[1].stats.count == 1 && series[1].stats.firstStep == nil && series[1].stats.last == 0.5)
        #expect(MetricsReader.summaries(run).map(\.id.description) == ["training/loss", "validation/acc, top-1"])
        // summary.yaml, when present, is what summaries come from.
        try
            "---\nrun_id: r1\nmetric_samples: 9\nmetrics:\n  training:\n    loss:\n      count: 9\n      first_step: 0\n      last_step: 8\n      last: 0.125\n      min: .nan\n      max: null\n"
            .write(toFile: dir + "/summary.yaml", atomically: true, encoding: .utf8)
        let fromSummary = MetricsReader.summaries(run)
        #expect(fromSummary.count == 1 && fromSummary[0].stats.count == 9 && fromSummary[0].stats.last == 0.125)
        #expect(fromSummary[0].stats.max == nil)
        let spark = MetricsReader.sparkline([1, 2, 3, 4, 5, 6, 7, 8])
        #expect(spark == "▁▂▃▄▅▆▇█")
        #expect(MetricsReader.sparkline((0..<1000).map { Double($0) }, width: 40).count == 40)
        #expect(MetricsReader.sparkline([.nan, 1, 1]) == " ▄▄")
        #expect(
            TextFormat.csvField("a,b") == "\"a,b\"" && TextFormat.csvField("say \"x\"") == "\"say \"\"x\"\"\""
                && TextFormat.csvField("ok") == "ok")
        #expect(
            TextFormat.flatten(["a": ["b": 1, "c": [1, 2]], "d": ["x": ["y": "z"]], "e": .map([])]).map(\.key) == [
                "a.b", "a.c", "d.x.y", "e",
            ])
    }

    @Test("SegmentFollower: several rotations between two polls, a partial last line — every line once, in order")
    func segmentFollower() throws {
        let f = try FakeRoot()
        let dir = try f.run("e", "r", id: "r1", start: "2026-01-01T00:00:00.000Z")
        let fm = FileManager.default
        var next = 0
        var segment = 0
        func append(_ n: Int, partial: String = "") throws {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/main.log"))
            try h.seekToEnd()
            var text = ""
            for _ in 0..<n {
                text += "line \(next)\n"
                next += 1
            }
            try h.write(contentsOf: Data((text + partial).utf8))
            try h.close()
        }
        func rotate() throws {
            segment += 1
            try fm.moveItem(
                atPath: dir + "/main.log", toPath: dir + "/main." + String(format: "%06d", segment) + ".log")
            _ = fm.createFile(atPath: dir + "/main.log", contents: nil)
        }
        _ = fm.createFile(atPath: dir + "/main.log", contents: nil)
        try append(5)
        try rotate()
        try append(5)
        let follower = SegmentFollower(directory: dir, stem: "main", ext: "log")
        var got = String(decoding: follower.poll(), as: UTF8.self)
        try append(3, partial: "line ")
        got += String(decoding: follower.poll(), as: UTF8.self)
        // Finish the partial line, then three rotations before the next poll.
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/main.log"))
        try h.seekToEnd()
        try h.write(contentsOf: Data("\(next)\n".utf8))
        try h.close()
        next += 1
        for _ in 0..<3 {
            try rotate()
            try append(4)
        }
        got += String(decoding: follower.poll(), as: UTF8.self)
        try append(2)
        got += String(decoding: follower.poll(), as: UTF8.self)
        got += String(decoding: follower.poll(), as: UTF8.self)
        #expect(got == (0..<next).map { "line \($0)\n" }.joined(), "\(got)")

        // CSV: every segment's header, printed once.
        try "h\n1\n".write(toFile: dir + "/metrics.000001.csv", atomically: true, encoding: .utf8)
        try "h\n2\n".write(toFile: dir + "/metrics.000002.csv", atomically: true, encoding: .utf8)
        try "h\n3\n".write(toFile: dir + "/metrics.csv", atomically: true, encoding: .utf8)
        let csv = SegmentFollower(directory: dir, stem: "metrics", ext: "csv", skipRepeatedHeaders: true)
        #expect(String(decoding: csv.poll(), as: UTF8.self) == "h\n1\n2\n3\n")
    }
}
