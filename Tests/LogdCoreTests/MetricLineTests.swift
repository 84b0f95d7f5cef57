import Testing
import LogdSystem

@testable import LogdCore

/// The writer's in-place formatting of metrics.csv fields (MetricLine.swift) must write exactly
/// the bytes the `String`-based formatting wrote before it: readers, the per-key files and
/// exported copies compare values as text.
@Suite struct MetricLineTests {
    static func old(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return (d == 0 && d.sign == .minus ? "-" : "") + "\(Int64(d)).0" }
        return d.description
    }

    static func formatted(_ body: (UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8>) -> String {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        defer { p.deallocate() }
        let end = body(p)
        return String(decoding: UnsafeBufferPointer(start: p, count: end - p), as: UTF8.self)
    }

    @Test("values: the shortest round-trip text of every kind of double, byte-identical to Double.description")
    func values() {
        var samples: [Double] = [
            0, -0.0, 1, -1, 0.5, 0.1, 1e-300, -1e-300, 5e-324, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .nan, -.nan, .infinity, -.infinity, 1e15, 1e15 - 1, -1e15 + 1, 1e16, 123_456_789.125, 2.0 / 3.0, Double(Float(0.1)),
        ]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 { samples.append(Double(bitPattern: rng.next())) }
        for _ in 0..<5_000 { samples.append(Double(Int64.random(in: -1_000_000_000...1_000_000_000)) / 1000) }
        for d in samples {
            let got = MetricLineTests.formatted { MetricLineFormatter.double(d, at: $0) }
            #expect(got == MetricLineTests.old(d), "bits \(d.bitPattern)")
        }
    }

    @Test("steps: every Int64 edge in decimal")
    func integers() {
        for v: Int64 in [0, 1, -1, 9, 10, 99, 100, Int64.max, Int64.min, Int64.min + 1, 1_000_000_007, -42] {
            #expect(MetricLineTests.formatted { MetricLineFormatter.integer(v, at: $0) } == String(v))
        }
        for _ in 0..<10_000 {
            let v = Int64.random(in: .min ... .max)
            #expect(MetricLineTests.formatted { MetricLineFormatter.integer(v, at: $0) } == String(v))
        }
    }

    @Test("times: ISO-8601 with milliseconds as ISOTimeFormatter writes it, across seconds, before 1970 and at the Int64 edges")
    func times() {
        var f = MetricLineFormatter()
        var samples: [Int64] = [0, -1, 1, 999_999_999, 1_000_000_000, -1_000_000_000, -1_000_000_001, .max, .min, 1_700_000_000_123_456_789]
        for _ in 0..<5_000 { samples.append(Int64.random(in: .min ... .max)) }
        var t: Int64 = 1_700_000_000_000_000_000
        for _ in 0..<3_000 {  // consecutive times: the cached second
            t += Int64.random(in: 0...400_000_000)
            samples.append(t)
        }
        for ns in samples {
            #expect(MetricLineTests.formatted { f.time(ns, at: $0) } == ISOTimeFormatter.string(ns), "\(ns)")
        }
    }
}

extension DaemonTests {
    /// A METRIC_BATCH is one numbered frame but many records: status counts each metric, for the
    /// run, the connection and the totals, on the fast path (whole batches) and the general path
    /// (a batch split across reads is decoded by the general decoder).
    @Test("status counts every metric of a METRIC_BATCH as a record (run, totals); rows written once each")
    func batchRecordsCounted() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try h.producer(["--run-id", "batched", "--experiment", "b", "--metrics", "1000", "--batch", "100", "--end", "none"])
        #expect(waitAll([p]))
        try h.flush()
        let status = try h.status()
        guard case .list(let runs)? = status["runs"], let run = runs.first(where: { $0["run_id"] == .string("batched") }) else {
            Issue.record("no run in status: \(status.jsonText())")
            return
        }
        #expect(run["records"] == .int(1000), "\(run.jsonText())")
        if case .int(let total)? = status["totals"]?["records"] { #expect(total >= 1001, "\(status.jsonText())") }
        let dirs = h.runDirectories()
        #expect(dirs.count == 1)
        if let dir = dirs.first {
            #expect(h.read(dir + "/metrics.csv").split(separator: "\n").count == 1001)
        }
        #expect(h.stop() == 0)
    }
}

extension DaemonTests {
    /// Key indices of runs that ended are reused (the writer's key table stays dense): a later
    /// run's keys must land in its own files under its own names, never in a finished run's.
    @Test("key indices reused after runs end: each run's rows carry its own keys, in its own directory")
    func reusedKeyIndices() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        for r in 0..<4 {
            let p = try RawProducer(h, runID: "reuse-\(r)", experiment: "reuse", name: "r\(r)")
            for i in 0..<20 {
                try p.metric("k\(r)_a", 1, step: Int64(i))
                try p.metric("k\(r)_b", context: "validation", 2, step: Int64(i))
            }
            try p.end()
        }
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 4)
        for dir in dirs {
            let r = Int(dir.split(separator: "_").last!.dropFirst())!
            let rows = h.read(dir + "/metrics.csv").split(separator: "\n").dropFirst()
            #expect(rows.count == 40, "\(dir)")
            let keys = Set(rows.map { $0.split(separator: ",", omittingEmptySubsequences: false)[3] })
            #expect(keys == ["k\(r)_a", "k\(r)_b"], "\(dir): \(keys)")
        }
        #expect(h.stop() == 0)
    }
}
