import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// Integration tests with the real `logd` binary on a socket in a temporary directory.
/// Serialized: each starts its own daemon and many processes on a 2-core machine.
@Suite("logd daemon", .serialized)
struct DaemonTests {
    /// Checks one run's files: each rank's metrics are steps 0..<metrics exactly once, in
    /// order, and its log lines 0..<logs exactly once, in order — across every segment.
    static func verifyRun(_ h: DaemonHarness, _ dir: String, ranks: Set<Int>, metrics: Int, logs: Int) {
        let csvSegments = h.segments(dir, stem: "metrics", ext: "csv")
        var byRank: [Int: [Int]] = [:]
        for segment in csvSegments {
            #expect(segment.hasPrefix("time,step,context,key,value,rank,source\n"), "segment without header in \(dir)")
            for row in metricRows(segment) {
                #expect(row.value == Double(row.step))
                byRank[row.rank, default: []].append(row.step)
            }
        }
        #expect(Set(byRank.keys) == ranks, "\(dir): ranks \(byRank.keys.sorted())")
        for (rank, steps) in byRank {
            let exact = steps == Array(0..<metrics)
            #expect(exact, "\(dir) rank \(rank): \(steps.count) metric rows, unique \(Set(steps).count), in order \(steps == steps.sorted())")
        }
        guard logs > 0 else { return }
        var lines: [Int: [Int]] = [:]
        for segment in h.segments(dir, stem: "main", ext: "log") {
            for line in segment.split(separator: "\n") {
                // "<time> INFO [rank r] train: rank r line j"
                let words = line.split(separator: " ")
                guard words.count == 9, let r = Int(words[6]), let j = Int(words[8]) else {
                    Issue.record("unexpected main.log line: \(line)")
                    continue
                }
                lines[r, default: []].append(j)
            }
        }
        for rank in ranks {
            let got = lines[rank] ?? []
            let exact = got == Array(0..<logs)
            #expect(exact, "\(dir) rank \(rank): \(got.count) log lines, unique \(Set(got).count), in order \(got == got.sorted())")
        }
    }

    @Test("64 producer processes × 10,000 metrics and 1,000 log lines into 8 runs: each record once, in order")
    func sixtyFourProducers() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        var producers: [Process] = []
        for p in 0..<64 {
            let run = p % 8, rank = p / 8
            producers.append(
                try h.producer([
                    "--run-id", "run-\(run)", "--experiment", "load", "--name", "r\(run)", "--rank", "\(rank)",
                    "--world-size", "8", "--metrics", "10000", "--logs", "1000", "--keys", "4",
                    "--batch", p % 2 == 0 ? "0" : "64",
                ]))
        }
        #expect(waitAll(producers, timeout: 300))
        for p in producers { #expect(p.terminationStatus == 0) }
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 8, "\(dirs)")
        for dir in dirs { Self.verifyRun(h, dir, ranks: Set(0..<8), metrics: 10_000, logs: 1_000) }
        let yaml = h.read(dirs[0] + "/run.yaml")
        #expect(yaml.contains("status: finished"))
        #expect(yaml.contains("received: 88000"))
        #expect(h.stop() == 0)
    }

    @Test("rotation under load (64 KiB segments): nothing lost or duplicated across segments")
    func rotationUnderLoad() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let config = h.root + "/logd.yaml"
        try "rotate_bytes: 65536\nack_interval_ms: 20\n".write(toFile: config, atomically: true, encoding: .utf8)
        try h.start(["--config", config])
        var producers: [Process] = []
        for rank in 0..<8 {
            producers.append(
                try h.producer([
                    "--run-id", "rot", "--experiment", "rot", "--rank", "\(rank)", "--world-size", "8", "--metrics", "20000", "--logs", "2000",
                ]))
        }
        #expect(waitAll(producers, timeout: 200))
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1)
        let segments = h.segments(dirs[0], stem: "metrics", ext: "csv")
        #expect(segments.count > 10, "expected many metrics segments, got \(segments.count)")
        #expect(h.segments(dirs[0], stem: "main", ext: "log").count > 3)
        Self.verifyRun(h, dirs[0], ranks: Set(0..<8), metrics: 20_000, logs: 2_000)
        #expect(h.stop() == 0)
    }
}
