import Foundation
import Testing

@testable import LogdForward
@testable import LogdRead
import Wire

/// The MLflow forwarder's pure parts (docs/MLFLOW.md): mapping, settings, the JSON reader, and
/// reading metrics.csv only up to the checkpoint across rotations. The end-to-end behaviour
/// against a real server is clients/python/tests/test_mlflow_forward.py.
@Suite("MLflow forwarding")
struct ForwardTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("metric keys: rank, context and source in the key; rank 0, training and no source add nothing")
    func metricKeys() {
        #expect(Mapping.metricKey(context: "training", key: "loss", rank: 0, source: "") == "loss")
        #expect(Mapping.metricKey(context: "validation", key: "acc", rank: 3, source: "") == "rank3/validation/acc")
        #expect(Mapping.metricKey(context: "training", key: "grad_norm", rank: 0, source: "encoder.layer1") == "grad_norm/encoder.layer1")
    }

    @Test("names MLflow would refuse are mapped, never cut silently")
    func names() {
        #expect(Mapping.validName("bad key!") == "bad key_")
        #expect(Mapping.validName("a//b/./c/../d/") == "a/_/b/_/c/__/d/_")
        #expect(Mapping.validName("/lead") == "_/lead")
        #expect(Mapping.validName("é") == "__")
        #expect(Mapping.validName("") == "_")
        let long = String(repeating: "k", count: 300)
        let mapped = Mapping.validName(long)
        #expect(mapped.utf8.count == 250)
        #expect(mapped.hasPrefix(String(repeating: "k", count: 233) + "_"))
        #expect(Mapping.validName(long + "x") != mapped, "two long names stay apart")
    }

    @Test("long values carry a marker and stay within MLflow's limit")
    func boundedValues() {
        let (short, cutShort) = Mapping.boundedValue("abc", limit: 6000, whereWhole: "config.yaml")
        #expect(short == "abc" && !cutShort)
        let (v, cut) = Mapping.boundedValue(String(repeating: "é", count: 4000), limit: 6000, whereWhole: "config.yaml")
        #expect(cut && v.utf8.count <= 6000)
        #expect(v.hasSuffix(" … [logd: 8000 bytes, cut; whole value in config.yaml]"))
        #expect(String(decoding: Array(v.utf8), as: UTF8.self) == v, "cut on a character boundary")
    }

    @Test("config.yaml flattens with dots; lists are JSON; scalars as written")
    func params() {
        let tree: Value = ["lr": 0.01, "model": ["depth": 4, "name": "mlp", "widths": [64, 32]], "on": true, "none": nil, "empty": .map([])]
        let flat = Mapping.flattenParams(tree)
        #expect(flat.map(\.key) == ["lr", "model.depth", "model.name", "model.widths", "on", "none", "empty"])
        #expect(flat.map(\.value) == ["0.01", "4", "mlp", "[64,32]", "true", "null", "{}"])
        #expect(Mapping.jsonDouble(.nan) == "\"NaN\"" && Mapping.jsonDouble(-.infinity) == "\"-Infinity\"")
    }

    @Test("settings: the config file's forward section over MLflow's environment; errors name the key")
    func settings() throws {
        let env = ["MLFLOW_TRACKING_URI": "http://env:5000/", "MLFLOW_TRACKING_TOKEN": "t"]
        let fromEnv = try #require(try ForwardSettings.resolve(configText: nil, environment: env))
        #expect(fromEnv.trackingURI == "http://env:5000" && fromEnv.token == "t")
        #expect(try ForwardSettings.resolve(configText: "log_level: info\n", environment: [:]) == nil)
        let text = """
            forward:
              mlflow:
                tracking_uri: https://file:5000
                ranks: [0, 1]
                exclude_keys: ["grad_norm/*"]
            """
        let s = try #require(try ForwardSettings.resolve(configText: text, environment: env))
        #expect(s.trackingURI == "https://file:5000" && s.ranks == [0, 1] && s.token == "t")
        #expect(s.admits(key: "loss", rank: 1) && !s.admits(key: "loss", rank: 2) && !s.admits(key: "grad_norm/l1", rank: 0))
        #expect(throws: ForwardSettings.Invalid.self) {
            try ForwardSettings.resolve(configText: "forward:\n  mlflow:\n    tracking_url: x\n", environment: [:])
        }
        #expect(throws: ForwardSettings.Invalid.self) {
            try ForwardSettings.resolve(configText: nil, environment: ["MLFLOW_TRACKING_URI": "databricks"])
        }
    }

    @Test("JSON reader: what Value.jsonText writes reads back; escapes and surrogates")
    func json() throws {
        let v: Value = ["a": [1, -2, 3.5, "x\"y\n\u{1F600}"], "b": nil, "c": true, "d": .map([])]
        #expect(try JSON.parse(v.jsonText(pretty: true)) == v)
        #expect(try JSON.parse("\"\\ud83d\\ude00\\u00e9\"") == .string("\u{1F600}é"))
        #expect(throws: JSON.Failure.self) { try JSON.parse("{\"a\":1,}") }
        #expect(throws: JSON.Failure.self) { try JSON.parse("[1] x") }
    }

    /// A run directory with metrics segments and a checkpoint naming (rotated, durable size).
    func runDirectory(_ files: [String: String], checkpoint: (Int, Int)) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("logd-fwd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8) }
        let state: Value = [
            "format": "logd-checkpoint-1", "metrics_csv": [.int(Int64(checkpoint.0)), .int(Int64(checkpoint.1))], "metric_count": 0,
        ]
        try Data(FrameEncoder().frame(.params(state))).write(to: URL(fileURLWithPath: dir + "/.logd-checkpoint"))
        return dir
    }

    static let header = "time,step,context,key,value,rank,source\n"
    static func row(_ step: Int, _ value: String = "1.0") -> String { "2026-11-22T22:40:01.123Z,\(step),training,loss,\(value),0,\n" }

    func readAll(_ dir: String, from: (Int, Int) = (1, 0)) -> [Int64] {
        let cp = Checkpoint.read(runDirectory: dir)!
        let reader = DurableMetrics(directory: dir)
        var pos = from
        var steps: [Int64] = []
        while true {
            let (rows, caughtUp) = reader.rows(from: pos, cp, maxBytes: 100)
            if caughtUp { break }
            for r in rows {
                if let row = r.row { steps.append(row.step) }
                pos = (r.segment, r.end)
            }
        }
        return steps
    }

    @Test("metrics are read across rotated segments and only up to the checkpoint's durable size")
    func durableOnly() throws {
        let seg1 = Self.header + Self.row(0) + Self.row(1)
        let live = Self.header + Self.row(2) + Self.row(3, "nan")
        let dir = try runDirectory(
            ["metrics.000001.csv": seg1, "metrics.csv": live + Self.row(4)], checkpoint: (1, live.utf8.count))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(readAll(dir) == [0, 1, 2, 3], "row 4 is past the checkpoint: not durable, not read")
        // Resuming from a position in the middle reads the rest once.
        let afterRow1 = (Self.header + Self.row(0) + Self.row(1)).utf8.count
        #expect(readAll(dir, from: (1, afterRow1)) == [2, 3])
    }

    @Test("the live file rotated after the checkpoint: its durable part is read under its new name")
    func rotatedSinceCheckpoint() throws {
        let seg1 = Self.header + Self.row(0)
        let seg2 = Self.header + Self.row(1) + Self.row(2)
        let dir = try runDirectory(
            ["metrics.000001.csv": seg1, "metrics.000002.csv": seg2, "metrics.csv": Self.header + Self.row(9)],
            checkpoint: (1, (Self.header + Self.row(1)).utf8.count))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(readAll(dir) == [0, 1])
    }

    @Test("cursor round trip through its JSON file")
    func cursor() throws {
        let dir = try runDirectory([:], checkpoint: (0, 0))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = Cursor(trackingURI: "http://x")
        c.mlflowRunID = "abc"
        c.segment = 3
        c.offset = 77
        c.acked = 5
        c.paramsSent = ["h1", "h2"]
        c.artifactsSent = ["main.log": "1:2:3"]
        c.setAside("param lr: changed")
        try c.save(dir)
        let back = try #require(Cursor.load(dir))
        #expect(back.mlflowRunID == "abc" && back.segment == 3 && back.offset == 77 && back.acked == 5)
        #expect(back.paramsSent == ["h1", "h2"] && back.artifactsSent == ["main.log": "1:2:3"] && back.refusedNames == ["param lr: changed"])
        #expect(ForwardState.mlflowRunID(runDirectory: dir) == "abc")
    }

    @Test("only LogdForward links libcurl: the daemon core and logctl do not reach CCurl")
    func graph() throws {
        let deps = try PackageGraphTests.targetDependencies()
        func reaches(_ from: String, _ to: String, _ seen: inout Set<String>) -> Bool { PackageGraphTests.reaches(deps, from, to, &seen) }
        #expect(deps.filter { $0.value.contains("CCurl") }.map(\.key) == ["LogdForward"])
        for name in ["LogdCore", "LogdRead", "LogSDK", "logctl", "wire-producer"] {
            var seen = Set<String>()
            #expect(!reaches(name, "CCurl", &seen), "\(name) reaches CCurl")
            seen = []
            #expect(!reaches(name, "LogdForward", &seen), "\(name) reaches LogdForward")
        }
    }
}
