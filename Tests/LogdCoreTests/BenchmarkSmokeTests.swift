import Foundation
import Testing

extension DaemonTests {
    /// The benchmark keeps compiling and working: a tiny run produces every figure (how fast
    /// they are is the benchmark's business, never a test's).
    @Test("logd-bench --quick produces every figure beside its floor")
    func benchmarkQuickRun() throws {
        let json = FileManager.default.temporaryDirectory.appendingPathComponent("logd-bench-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: json) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd-bench"))
        p.arguments = ["--quick", "--json", json]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        let hot = try #require(doc["sdk_hot_path"] as? [String: Any])
        for label in ["running", "absent", "stopped"] {
            let d = try #require(hot[label] as? [String: Any], "no \(label) figures")
            for k in ["median_ns", "p99_ns", "p99_9_ns", "allocations_per_call"] {
                #expect((d[k] as? Double).map { $0 >= 0 } == true, "\(label).\(k)")
            }
        }
        #expect(((hot["floor_ns"] as? [String: Any])?["median"] as? Double).map { $0 > 0 } == true)
        let e2e = try #require(doc["end_to_end"] as? [[String: Any]])
        #expect(e2e.count == 2)
        for r in e2e {
            for k in ["records_per_s", "floor_records_per_s", "ratio_to_floor", "daemon_cpu_s_per_million", "disk_bytes_per_record"] {
                #expect((r[k] as? Double).map { $0 > 0 } == true, "end_to_end.\(k)")
            }
            #expect(r["failed_producers"] as? Int == 0)
        }
        #expect(doc["idle_connections"] != nil)
        #expect(text.contains("end to end, 2 producers"))
    }
}
