import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// prov.json in yProv4ML's shape (docs/RUN_OUTPUTS.md, "prov.json"): DDP ranks of one run in one
/// document, and a size that does not grow with the number of metric samples.
extension DaemonTests {
    /// Loads prov.json with the prov package (warnings are errors) and prints a JSON summary.
    static let provSummary = #"""
        import json, re, sys, warnings
        warnings.simplefilter("error")
        import prov.model as pm
        with open(sys.argv[1], encoding="utf-8") as f:
            text = f.read()
        pm.ProvDocument.deserialize(content=text, format="json")
        d = json.loads(text)
        def typ(r):
            t = r.get("prov:type")
            return t.get("$") if isinstance(t, dict) else t
        out = {
            "bytes": len(text.encode()),
            "nondigits": len(re.sub(r"[0-9]", "", text)),
            "activities": {i: [typ(a), a.get("yprov:global_rank", {}).get("$"), a.get("logd:status")] for i, a in d["activity"].items()},
            "informed": sorted([r["prov:informed"], r["prov:informant"]] for r in d.get("wasInformedBy", {}).values()),
            "metrics": sorted(i for i, e in d["entity"].items() if typ(e) == "provml:Metric"),
            "params": sorted(e["prov:label"] for e in d["entity"].values() if typ(e) == "provml:HyperParameter"),
            "root": list(d["activity"])[0],
            "runtime": d["activity"][list(d["activity"])[0]].get("yprov:runtime_type"),
            "records": sum(len(v) for k, v in d.items() if k != "prefix"),
        }
        print(json.dumps(out))
        """#

    static func provSummary(_ h: DaemonHarness, _ dir: String) throws -> [String: Any] {
        let (status, output) = try python(h, provSummary, [h.dataRoot + "/" + dir + "/prov.json"])
        #expect(status == 0, "\(output)")
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("prov.json: DDP ranks of one run in one document, one activity per rank informed by the run")
    func provRanksInOneDocument() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let r0 = try RawProducer(h, runID: "ddp-prov", experiment: "ddp", name: "ddp", rank: 0, worldSize: 2)
        try r0.send([.params(["lr": 0.1])])
        try r0.flush()  // rank 0 creates the run directory
        let r1 = try RawProducer(h, runID: "ddp-prov", experiment: "ddp", name: "ddp", rank: 1, worldSize: 2)
        try r1.send([.params(["rank1_only": true])])
        for step in 0..<5 {
            try r0.metric("loss", 1.0 / Double(step + 1), step: Int64(step))
            try r1.metric("loss_r1", 2.0 / Double(step + 1), step: Int64(step))
        }
        try r0.end()
        try r1.end()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        let s = try Self.provSummary(h, dirs[0])
        let root = s["root"] as? String ?? ""
        #expect(root == dirs[0])
        #expect(s["runtime"] as? String == "distributed")
        let acts = s["activities"] as? [String: [Any]] ?? [:]
        #expect((acts[root + "//GR0"]?[0] as? String) == "provml:RankExecution", "\(acts)")
        #expect((acts[root + "//GR0"]?[1] as? String) == "0", "\(acts)")
        #expect((acts[root + "//GR1"]?[1] as? String) == "1", "\(acts)")
        #expect((acts[root + "//GR1"]?[2] as? String) == "finished", "\(acts)")
        let informed = (s["informed"] as? [[String]] ?? []).map { $0.joined(separator: " <- ") }
        #expect(informed.contains(root + "//GR0 <- " + root) && informed.contains(root + "//GR1 <- " + root), "\(informed)")
        #expect(s["metrics"] as? [String] == ["loss//training", "loss_r1//training"])
        #expect(s["params"] as? [String] == ["lr", "rank1_only"])
        #expect(h.stop() == 0)
    }

    @Test("prov.json does not grow with metric samples: 1,000,000 samples give the document 30 give")
    func provSizeIndependentOfSamples() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        func logRun(_ name: String, samplesPerKey: Int) throws -> String {
            let p = try RawProducer(h, runID: name, experiment: name, name: "run")
            let keys = ["loss", "acc", "lr"]
            try p.send(keys.enumerated().map { .metricKey(MetricKey(id: UInt32($0.offset), key: $0.element, context: "training", source: "")) })
            var sent = 0
            while sent < samplesPerKey {
                let n = min(4096, samplesPerKey - sent)
                for k in 0..<keys.count {
                    let batch = (0..<n).map {
                        Metric(keyID: UInt32(k), step: Int64(sent + $0), timestamp: 1_700_000_000_000_000_000, value: Double(sent + $0) * 0.5)
                    }
                    try p.send([.metricBatch(batch)])
                }
                sent += n
            }
            try p.end()
            return h.runDirectories().first { $0.hasPrefix(name + "/") } ?? ""
        }
        let small = try Self.provSummary(h, try logRun("small", samplesPerKey: 10))
        let large = try Self.provSummary(h, try logRun("large", samplesPerKey: 333_334))
        #expect(small["metrics"] as? [String] == ["acc//training", "loss//training", "lr//training"])
        #expect(large["metrics"] as? [String] == small["metrics"] as? [String])
        #expect(large["records"] as? Int == small["records"] as? Int)
        let a = small["bytes"] as? Int ?? 0
        let b = large["bytes"] as? Int ?? 0
        // Only numbers differ: the metric file's size, the summaries (count, last step, values).
        #expect(small["nondigits"] as? Int == large["nondigits"] as? Int)
        #expect(a > 0 && abs(b - a) < 256, "small \(a) bytes, large \(b) bytes")
        #expect(h.stop() == 0)
    }
}
