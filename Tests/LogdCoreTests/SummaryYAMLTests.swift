import Testing
import Wire

@testable import LogdCore

/// summary.yaml from per-key fragments (re-rendered only for keys that changed) must be the
/// bytes libyaml writes for the whole tree, rewrite after rewrite.
@Suite struct SummaryYAMLTests {
    @Test(
        "fragments equal libyaml's whole-tree rendering: random keys, contexts, counts, steps, NaN/inf values, run ids that need quoting; after partial updates too"
    )
    func fragmentsMatchLibyaml() {
        let runIDs = ["p1", "0f8e-77aa", "run id with spaces", "yes", "", "a:b", "x\"y"]
        var rng = SystemRandomNumberGenerator()
        for (n, runID) in runIDs.enumerated() {
            let run = RunFiles(
                index: Int32(n), runID: runID, directory: "d", dirfd: -1, identity: RunStart(runID: runID, experiment: "e", name: "n"),
                config: LogdConfig(environment: [:]))
            let contexts = ["training", "validation", "eval_2", "custom-ctx"]
            var samples: UInt64 = 0
            for round in 0..<6 {
                let newKeys = round == 0 ? 40 : Int.random(in: 0...5)
                for _ in 0..<newKeys {
                    let c = contexts.randomElement()!
                    let k = "k\(run.summaries.count)_\(["loss", "acc", "grad.norm", "lr"].randomElement()!)"
                    _ = run.summarySlot(context: c, key: k, source: "")
                }
                for _ in 0..<Int.random(in: 0...200) {
                    let i = Int.random(in: 0..<run.summaries.count)
                    let values: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, 1e300, 3, Double(bitPattern: rng.next())]
                    run.summaries[i].add(values.randomElement()!, step: Bool.random() ? WireProtocol.noStep : Int64.random(in: -5...1_000_000))
                    samples += 1
                }
                run.metricCount = samples
                let fast = run.summaryYAML()
                let tree = run.summaryYAMLTree()
                #expect(
                    fast == tree,
                    "run id \(runID) round \(round):\n\(String(decoding: fast, as: UTF8.self).prefix(400))\n---\n\(String(decoding: tree, as: UTF8.self).prefix(400))"
                )
            }
        }
    }

    @Test("no metrics: `metrics: {}` as libyaml writes it")
    func empty() {
        let run = RunFiles(
            index: 0, runID: "r", directory: "d", dirfd: -1, identity: RunStart(runID: "r", experiment: "e", name: "n"),
            config: LogdConfig(environment: [:]))
        #expect(run.summaryYAML() == run.summaryYAMLTree())
    }
}
