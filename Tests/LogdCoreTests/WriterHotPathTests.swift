import Foundation
import Testing
import Wire

@testable import LogdCore

/// The writer's per-metric path (issue 18): metrics reach the writer as runs of plain items,
/// a run's files and a key are looked up once per stretch, lines are formatted in place with
/// short fields copied as 16-byte words, and a connection's key ids sit in an array that grows
/// with the keys defined. These tests hold what each of those could get wrong.
extension DaemonTests {
    /// Key ids in the array, in the dictionary (far beyond the keys defined), and one defined
    /// in the dictionary that the array later covers: every metric keeps its own key.
    @Test("scattered key ids (array, dictionary, and a dictionary id the array later covers): every row under its own key")
    func scatteredKeyIDs() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try RawProducer(h, runID: "scattered", experiment: "hot", name: "ids")
        // 9000 first: beyond 4096 and twice the keys defined, so the dictionary holds it. Then
        // 4,600 more keys grow the array past 9000, and 9100 lands in the array.
        var ids: [UInt32] = [9000]
        ids += (0..<4600).map { UInt32($0) }
        ids += [9100, 1_000_000, 4_294_967_294]
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            try p.send(ids[chunk..<min(chunk + 500, ids.count)].map { .metricKey(MetricKey(id: $0, key: "k\($0)", context: "training", source: "")) })
        }
        let checked: [UInt32] = [9000, 0, 1, 4095, 4096, 4599, 9100, 1_000_000, 4_294_967_294]
        // Interleaved keys, as single frames and as one batch (the writer's key stretches are one metric long).
        for step in 0..<3 {
            try p.send(checked.map { .metric(Metric(keyID: $0, step: Int64(step), timestamp: 1_700_000_000_000_000_000, value: Double($0))) })
        }
        try p.send([.metricBatch(checked.map { Metric(keyID: $0, step: 3, timestamp: 1_700_000_000_000_000_000, value: Double($0)) })])
        try p.end()
        let dirs = h.runDirectories()
        try #require(dirs.count == 1)
        let rows = h.read(dirs[0] + "/metrics.csv").split(separator: "\n").dropFirst().map {
            $0.split(separator: ",", omittingEmptySubsequences: false)
        }
        #expect(rows.count == 4 * checked.count)
        for row in rows {
            #expect("k" + String(Int(Double(row[4])!)) == row[3], "\(row)")
        }
        #expect(Set(rows.map { String($0[3]) }) == Set(checked.map { "k\($0)" }))
        #expect(h.stop() == 0)
    }

    /// Two runs on two connections whose metrics alternate reach the writer in one stream of
    /// metrics; fields longer than 32 bytes are copied whole; the per-key files hold the same
    /// rows as metrics.csv, field for field.
    @Test("two runs' metrics interleaved, long contexts, keys and sources: metrics.csv and the per-key files agree row for row")
    func interleavedRunsLongFields() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let long = String(repeating: "x", count: 70)
        let a = try RawProducer(h, runID: "inter-a", experiment: "hot", name: "a")
        let b = try RawProducer(h, runID: "inter-b", experiment: "hot", name: "b")
        let keys: [(key: String, context: String, source: String)] = [
            ("loss", "training", ""), ("loss_" + long, "training", ""), ("acc", "validation_" + long, "gpu_" + long), ("q", "testing", "s"),
        ]
        for p in [a, b] {
            try p.send(
                keys.enumerated().map {
                    .metricKey(MetricKey(id: UInt32($0.offset), key: $0.element.key, context: $0.element.context, source: $0.element.source))
                })
        }
        let values: [Double] = [0.1, -2.5e-300, 123_456_789_012_345_678, .nan, -.infinity, 1e15, 42, -0.0]
        for step in 0..<200 {
            for (i, p) in [a, b].enumerated() {
                let k = UInt32((step + i) % keys.count)
                let v = values[(step * 3 + i) % values.count]
                try p.send([
                    .metric(
                        Metric(
                            keyID: k, step: step % 7 == 0 ? WireProtocol.noStep : Int64(step),
                            timestamp: 1_700_000_000_000_000_000 + Int64(step) * 333_333_333, value: v))
                ])
            }
        }
        try a.end()
        try b.end()
        let dirs = h.runDirectories()
        try #require(dirs.count == 2)
        for dir in dirs {
            let lines = h.read(dir + "/metrics.csv").split(separator: "\n").dropFirst().map(String.init)
            #expect(lines.count == 200, "\(dir)")
            // time,step,context,key,value,rank,source -> the per-key row step,value,time,rank,source
            var expected: [String: [String]] = [:]
            for line in lines {
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                #expect(f.count == 7, "\(line)")
                #expect(keys.contains { $0.key == f[3] && $0.context == f[2] && $0.source == f[6] }, "\(line)")
                expected[f[2] + "/" + f[3], default: []].append([f[1], f[4], f[0], f[5], f[6]].joined(separator: ","))
            }
            let files = (try? FileManager.default.contentsOfDirectory(atPath: h.dataRoot + "/" + dir + "/metrics")) ?? []
            #expect(files.filter { $0.hasSuffix(".csv") }.count == keys.count, "\(files)")
            var seen = 0
            for file in files where file.hasSuffix(".csv") {
                let rows = h.read(dir + "/metrics/" + file).split(separator: "\n").dropFirst().map(String.init)
                let match = expected.values.first { $0 == rows }
                #expect(match != nil, "\(dir)/metrics/\(file) matches no key's rows of metrics.csv")
                seen += rows.count
            }
            #expect(seen == 200)
        }
        #expect(h.stop() == 0)
    }
}
