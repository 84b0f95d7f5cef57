import Foundation
import LogSDK
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// LogSDK against the real daemon: the SDK runs in this test process, logd in its own.
extension DaemonTests {
    static func steps(in h: DaemonHarness, key: String) -> [Int] {
        var steps: [Int] = []
        for dir in h.runDirectories() {
            for seg in h.segments(dir, stem: "metrics", ext: "csv") {
                steps += metricRows(seg).filter { $0.key == key }.map(\.step)
            }
        }
        return steps
    }

    @Test("SDK: records logged before the daemon existed arrive once it starts")
    func sdkDaemonStartsLater() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let run = Run(experiment: "sdk", name: "late", sink: .daemon(socket: h.socket))
        let loss = run.key("loss")
        for i in 0..<5_000 { run.metric(loss, Double(i), step: Int64(i)) }
        run.log("logged before logd started")
        #expect(!run.isConnected)
        try h.start()
        let report = run.finish(timeout: 30)
        #expect(report.completed)
        #expect(report.acknowledged == report.logged && report.dropped == 0, "\(report)")
        #expect(Self.steps(in: h, key: "loss") == Array(0..<5_000))
        #expect(h.stop() == 0)
    }

    @Test("SDK: the daemon absent for a whole run — finish returns within its timeout and reports nothing delivered")
    func sdkDaemonAbsent() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let run = Run(experiment: "sdk", name: "absent", sink: .daemon(socket: h.socket))
        let k = run.key("x")
        for i in 0..<1_000 { run.metric(k, Double(i), step: Int64(i)) }
        let started = Date()
        let report = run.finish(timeout: 1)
        let took = Date().timeIntervalSince(started)
        #expect(took < 10, "finish must not hang (took \(took) s)")
        #expect(!report.completed)
        #expect(report.acknowledged == 0)
        #expect(report.logged == 1_002)  // RUN_START + 1,000 metrics + RUN_END
        #expect(report.undelivered == report.logged)
    }

    @Test("SDK: daemon killed -9 and restarted mid-run — nothing lost, nothing duplicated")
    func sdkDaemonKilledMidRun() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let run = Run(experiment: "sdk", name: "kill", sink: .daemon(socket: h.socket))
        let k = run.key("v")
        for i in 0..<50_000 {
            run.metric(k, Double(i), step: Int64(i))
            if i == 20_000 {
                #expect(run.flush(timeout: 20))
                h.stop(signal: SIGKILL)
            }
            if i == 30_000 { try h.start() }
            if i % 1000 == 0 { usleep(1000) }
        }
        let report = run.finish(timeout: 60)
        #expect(report.completed, "\(report)")
        #expect(report.acknowledged == report.logged)
        let steps = Self.steps(in: h, key: "v")
        #expect(steps.count == 50_000 && steps == Array(0..<50_000), "\(steps.count) rows, \(Set(steps).count) unique")
        #expect(h.stop() == 0)
    }

    @Test("SDK: daemon SIGSTOPped — metric calls keep returning, the bound holds, drops are counted and reported")
    func sdkDaemonStopped() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let run = Run(experiment: "sdk", name: "stopped", sink: .daemon(socket: h.socket), bufferBytes: 256 << 10)
        let k = run.key("v")
        #expect(run.flush(timeout: 10))
        let pid = h.daemon!.processIdentifier
        kill(pid, SIGSTOP)
        for i in 0..<200_000 { run.metric(k, Double(i), step: Int64(i)) }
        let during = run.report
        #expect(during.dropped > 0, "a 256 KiB buffer cannot hold 200,000 metrics")
        let held = during.logged - during.dropped - during.acknowledged
        // Metrics travel as 28-byte METRIC_BATCH entries (plus 9 bytes per batch of up to 146).
        #expect(held * 28 <= 256 << 10 + 2 * 33, "held \(held) records beyond the bound")
        kill(pid, SIGCONT)
        let report = run.finish(timeout: 30)
        #expect(report.completed, "\(report)")
        #expect(report.dropped == during.dropped)
        #expect(report.acknowledged == report.logged - report.dropped)
        let rows = Self.steps(in: h, key: "v")
        #expect(UInt64(rows.count) == 200_000 - report.dropped)
        let firstBad = rows.indices.dropLast().first { rows[$0] >= rows[$0 + 1] }
        #expect(
            firstBad == nil,
            "kept records stay in order; first violation at \(firstBad ?? -1): \(firstBad.map { Array(rows[max(0, $0 - 3)..<min(rows.count, $0 + 4)]) } ?? [])"
        )
        guard let dir = h.runDirectories().first else { return }
        #expect(h.read(dir + "/run.yaml").contains("dropped: \(report.dropped)"))
        #expect(h.stop() == 0)
    }

    @Test("SDK: a forked child logs on its own producer session of the same run (logd-demo --fork)")
    func sdkForkedChild() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let demo = Process()
        demo.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd-demo"))
        demo.arguments = ["--socket", h.socket, "--experiment", "forked", "--steps", "50", "--epochs", "2", "--fork"]
        let out = Pipe()
        demo.standardOutput = out
        try demo.run()
        demo.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(demo.terminationStatus == 0, "\(text)")
        #expect(text.contains("worker delivery: logged 53, acknowledged 53"), "\(text)")
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        guard let dir = dirs.first else { return }
        let yaml = h.read(dir + "/run.yaml")
        let sessions = yaml.split(separator: "\n").filter { $0.contains("session:") }
        #expect(sessions.count == 2, "two producer sessions: \(yaml)")
        #expect(Set(sessions).count == 2)
        let rows = metricRows(h.read(dir + "/metrics.csv"))
        #expect(rows.filter { $0.key == "worker_batches" }.count == 50)
        #expect(rows.filter { $0.key == "loss" }.count == 100)
        #expect(h.read(dir + "/main.log").contains("worker: worker done"))
        #expect(h.stop() == 0)
    }
}
