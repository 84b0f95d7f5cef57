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

extension DaemonTests {
    /// `make bench-instructions` keeps working: a tiny callgrind run of the debug daemon and the
    /// C floor prints every figure, and the floor's rows are byte-identical to logd's metrics.csv
    /// (the script exits non-zero otherwise). valgrind and cc come from scripts/install-deps.sh.
    @Test("bench/instructions.py: logd and the C floor write the same rows; every figure is printed")
    func instructionsBenchmarkQuickRun() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("logd-instr-\(getpid())").path
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let repo = DaemonTests.repositoryRoot
        let floor = tmp + "/floor"
        let cc = try DaemonTests.run(["cc", "-O2", "-o", floor, repo.appendingPathComponent("bench/floor.c").path])
        #expect(cc.status == 0, "\(cc.output)")
        let json = tmp + "/out.json"
        let (status, output) = try DaemonTests.run([
            "python3", repo.appendingPathComponent("bench/instructions.py").path, "--bin", DaemonHarness.buildDirectory.path,
            "--floor", floor, "--n1", "100", "--n2", "300", "--keys", "50", "--producers", "4", "--json", json,
        ])
        #expect(status == 0, "\(output)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: [String: Any]])
        for label in ["METRIC frames", "METRIC_BATCH of 100"] {
            #expect((doc[label]?["floor"] as? Int).map { $0 > 0 } == true, "\(label): \(output)")
            #expect((doc[label]?["logd"] as? Int).map { $0 > 0 } == true, "\(label): \(output)")
        }
        #expect(doc["50 keys"] != nil && doc["4 producers of one run"] != nil, "\(output)")
    }
}
