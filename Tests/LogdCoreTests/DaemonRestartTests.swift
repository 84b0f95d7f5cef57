import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

extension DaemonTests {
    /// Four producers log while the daemon is stopped by `signal` and started again; the
    /// producers reconnect with their sessions and resend what was not acknowledged.
    func restartMidRun(signal sig: Int32) throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        var producers: [Process] = []
        for rank in 0..<4 {
            producers.append(
                try h.producer([
                    "--run-id", "restart", "--experiment", "restart", "--rank", "\(rank)", "--world-size", "4",
                    "--metrics", "200000", "--logs", "2000", "--pause-micros", "20000", "--retry-seconds", "60",
                ]))
        }
        usleep(700_000)
        let allRunning = producers.allSatisfy { $0.isRunning }
        #expect(allRunning, "the producers finished before the daemon was stopped")
        let code = h.stop(signal: sig)
        if sig == SIGTERM { #expect(code == 0, "a drain exits 0") }
        usleep(300_000)
        try h.start()
        #expect(waitAll(producers, timeout: 180))
        for p in producers { #expect(p.terminationStatus == 0) }
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        if let dir = dirs.first {
            Self.verifyRun(h, dir, ranks: Set(0..<4), metrics: 200_000, logs: 2_000)
            #expect(h.read(dir + "/run.yaml").contains("status: finished"))
        }
        #expect(h.stop() == 0)
    }

    @Test("kill -9 the daemon mid-run, start it again, the clients resend: no record lost, none duplicated")
    func killNineMidRun() throws { try restartMidRun(signal: SIGKILL) }

    @Test("SIGTERM during load drains and exits 0; after a restart nothing sent is lost or duplicated")
    func sigtermMidRun() throws { try restartMidRun(signal: SIGTERM) }

    @Test("a producer that vanishes without RUN_END leaves its run 'crashed' with everything it sent")
    func vanishedProducer() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try h.producer(["--run-id", "vanish", "--experiment", "crash", "--metrics", "500", "--end", "none"])
        #expect(waitAll([p]))
        #expect(p.terminationStatus == 0)
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1)
        if let dir = dirs.first {
            #expect(metricRows(h.read(dir + "/metrics.csv")).count == 500)
            #expect(h.read(dir + "/run.yaml").contains("status: crashed"))
        }
        #expect(h.stop() == 0)
    }
}
