import Foundation
import LogSDK
import LogSDKLogging
import Logging
import Testing
import Wire

@Suite("LogSDK in memory")
struct RunTests {
    @Test("records encode into the buffer and decode to what was logged (in-memory sink)")
    func inMemorySink() {
        let sink = InMemorySink()
        let run = Run(experiment: "unit", name: "mem", config: ["lr": 0.1], tags: ["t"], seed: 7, runID: "r-1", sink: .memory(sink))
        let loss = run.key("loss", context: .validation, source: "head")
        run.metric(loss, 0.5, step: 3)
        run.metric("acc", 0.9)
        run.log("hello", level: .warning, logger: "unit")
        run.param("epochs", 5)
        run.logDataset(label: "d", samples: 100, batchSize: 32)
        let report = run.finish(timeout: 5)
        #expect(report.completed)
        #expect(report.logged == 8 && report.acknowledged == 8 && report.dropped == 0, "\(report)")
        let records = sink.records
        guard case .runStart(let start)? = records.first else {
            Issue.record("first record is not RUN_START: \(records.first.map { "\($0)" } ?? "none")")
            return
        }
        #expect(start.runID == "r-1" && start.experiment == "unit" && start.seed == 7 && start.tags == ["t"])
        #expect(start.commandLine == CommandLine.arguments)
        #expect(records.contains(.params(["lr": 0.1])))
        #expect(records.contains { if case .metric(let m) = $0 { m.value == 0.5 && m.step == 3 } else { false } })
        #expect(records.contains { if case .metric(let m) = $0 { m.value == 0.9 && m.step == WireProtocol.noStep } else { false } })
        #expect(records.contains { if case .log(let l) = $0 { l.message == "hello" && l.level == .warning } else { false } })
        #expect(records.contains(.params(["epochs": 5])))
        #expect(records.contains { if case .dataset(let d) = $0 { d.batches == 4 } else { false } })
        if case .runEnd(let end)? = records.last { #expect(end.status == .finished) } else { Issue.record("last is not RUN_END") }
        #expect(sink.values(of: "loss") == [0.5])
    }

    @Test("overflow: with no daemon, a bounded buffer keeps what fits and counts every drop")
    func overflowCounting() {
        let run = Run(experiment: "unit", name: "overflow", sink: .daemon(socket: "/nonexistent/logd.sock"), bufferBytes: 128 << 10)
        let k = run.key("x")
        for i in 0..<20_000 { run.metric(k, Double(i), step: Int64(i)) }
        let r = run.report
        #expect(r.logged == 20_001)  // RUN_START + 20,000
        #expect(r.dropped > 0)
        let stored = r.logged - r.dropped
        // Two 64 KiB chunks: RUN_START plus as many metrics as fit in METRIC_BATCH frames (a
        // 9-byte header and up to 146 entries of 28 bytes; nothing seals a batch early, as no
        // daemon is there). RUN_START's size depends on the command line and directory:
        // measure the same record, encoded.
        let probe = InMemorySink()
        Run(experiment: "unit", name: "overflow", sink: .memory(probe)).finish(timeout: 5)
        var startBytes: [UInt8] = []
        if let first = probe.records.first { try? FrameEncoder().encode(first, into: &startBytes) }
        #expect(startBytes.count > 4)
        let chunk = 64 << 10
        func batched(_ bytes: Int) -> Int {
            let full = bytes / (9 + 146 * 28)
            let rest = bytes - full * (9 + 146 * 28)
            return full * 146 + max(0, rest - 9) / 28
        }
        let fits = UInt64(1 + batched(chunk - startBytes.count) + batched(chunk))
        #expect(stored == fits, "stored \(stored), RUN_START \(startBytes.count) bytes")
        let final = run.finish(timeout: 0.2)
        #expect(!final.completed)
        #expect(final.undelivered == final.logged - final.dropped)
    }

    @Test("the no-op sink accepts and discards everything")
    func noopSink() {
        let run = Run(experiment: "unit", name: "off", sink: .none)
        for i in 0..<1000 { run.metric("x", Double(i)) }
        let report = run.finish(timeout: 5)
        #expect(report.completed && report.acknowledged == report.logged && report.dropped == 0)
    }

    @Test("swift-log Logger calls land as log lines with level, logger label and metadata")
    func swiftLogHandler() {
        let sink = InMemorySink()
        let run = Run(experiment: "unit", name: "swiftlog", sink: .memory(sink))
        var logger = Logger(label: "trainer") { RunLogHandler(label: $0, run: run) }
        logger.logLevel = .debug
        logger.error("boom", metadata: ["epoch": "3"])
        logger.trace("not logged below the level")
        run.finish(timeout: 5)
        let lines = sink.records.compactMap { if case .log(let l) = $0 { l } else { nil } }
        #expect(lines.count == 1)
        #expect(lines.first?.level == .error && lines.first?.logger == "trainer" && lines.first?.message == "boom epoch=3")
    }

    @Test("reference artifacts carry size and sha256; a missing file returns false with a reason")
    func artifacts() throws {
        let sink = InMemorySink()
        let run = Run(experiment: "unit", name: "art", sink: .memory(sink))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("logd-art-\(getpid()).txt").path
        try "abc".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(run.logArtifact(path: path, role: .input, copy: false))
        #expect(!run.logArtifact(path: "/nonexistent/file", copy: false))
        #expect(run.lastError?.contains("/nonexistent/file") == true)
        run.finish(timeout: 5)
        let art = sink.records.compactMap { if case .artifact(let a) = $0 { a } else { nil } }
        #expect(art.count == 1)
        #expect(art.first?.size == 3 && art.first?.mode == .reference && art.first?.role == .input)
        #expect(art.first?.sha256.description == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
