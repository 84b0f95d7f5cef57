import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// What a hostile client, a poisoned data root, a full disk or a crash at a named moment must
/// not do to logd (issue: hardening). Every test uses the real daemon binary.
extension DaemonTests {
    /// Writes a config file into the harness's root and returns its path.
    private func config(_ h: DaemonHarness, _ text: String) throws -> String {
        let path = h.root + "/logd.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The daemon is alive and answers status.
    private func alive(_ h: DaemonHarness) -> Bool {
        guard let reply = try? h.control().request(.status) else { return false }
        return reply.status == .ok
    }

    @Test("single frames with extreme numbers: logd answers with an error or takes them, never traps; a restart on that data root works")
    func extremeNumbersNeverTrap() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        // A HELLO whose first frame number is beyond 2^62: refused.
        let s1 = try WireSocket(path: h.socket)
        try s1.send([.hello(Hello(role: .producer, pid: 1, session: SessionID(high: 1, low: 1), firstSeq: .max, clientName: "x", clientVersion: "1"))]
        )
        if case .error(let e) = try s1.receive(timeoutMs: 5000) {
            #expect(e.code == .protocolViolation)
        } else {
            Issue.record("no ERROR for first_seq 2^64-1")
        }
        // A RUN_START with INT64_MIN as start time: refused.
        let s2 = try WireSocket(path: h.socket)
        try s2.send([
            .hello(Hello(role: .producer, pid: 1, session: SessionID(high: 2, low: 2), firstSeq: 1, clientName: "x", clientVersion: "1")),
            .runStart(RunStart(runID: "neg", experiment: "e", name: "n", startTime: .min)),
        ])
        _ = try s2.receive(timeoutMs: 5000)  // WELCOME
        if case .error = try s2.receive(timeoutMs: 5000) {} else { Issue.record("no ERROR for a negative start time") }
        #expect(alive(h))
        // A run with DROPS 2^63-1 and 2^64-1, metrics at the extremes of time and step.
        let p = try RawProducer(h, runID: "extreme", experiment: "hostile", name: "extreme")
        try p.send([.drops(total: UInt64(Int64.max)), .drops(total: .max)])
        try p.send([
            .metricKey(MetricKey(id: 1, key: "loss", context: "training")),
            .metric(Metric(keyID: 1, step: .min, timestamp: .min, value: .nan)),
            .metric(Metric(keyID: 1, step: .max, timestamp: .max, value: -.infinity)),
            .metric(Metric(keyID: 1, step: 0, timestamp: -1, value: 1e308)),
            .log(LogLine(level: .error, timestamp: .min, logger: "x", message: "min")),
        ])
        try p.flush()
        #expect(alive(h))
        let st = try h.status()
        #expect(st["totals"]?["records_refused"] == .int(2), "the DROPS beyond 2^53 are refused and counted: \(st.jsonText())")
        // Control requests: a flush timeout that overflows ns, a negative one, arguments that are not a map.
        let c = try h.control()
        #expect(try c.request(.flush, ["timeout_ms": .int(10_000_000_000_000)]).status == .badRequest)
        #expect(try c.request(.flush, ["timeout_ms": .int(-5)]).status == .badRequest)
        #expect(try c.request(.flush, .list([.int(1)])).status == .badRequest)
        #expect(try c.request(.status, .string("x")).status == .badRequest)
        #expect(alive(h))
        // logctl's own flag cannot overflow either.
        let logctl = Process()
        logctl.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logctl"))
        logctl.arguments = ["flush", "--socket", h.socket, "--timeout", "10000000000"]
        logctl.standardError = FileHandle.nullDevice
        try logctl.run()
        logctl.waitUntilExit()
        #expect(logctl.terminationStatus == 64 || logctl.terminationStatus == 2, "a usage error, not a crash")
        #expect(alive(h))
        // The poisoned data root: kill -9 with the run open, then start again, twice.
        h.stop(signal: SIGKILL)
        try h.start()
        #expect(alive(h))
        h.stop(signal: SIGTERM)
        try h.start()
        #expect(alive(h))
        #expect(h.stop() == 0)
        #expect(!h.daemonStderr().contains("Fatal error"), "\(h.daemonStderr())")
    }

    @Test("a corrupt checkpoint, a hostile checkpoint and a marker pointing outside the data root are quarantined; the other run recovers")
    func poisonedDataRootIsQuarantined() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        var dirs: [String: String] = [:]
        for name in ["good", "corrupt", "hostile"] {
            let p = try RawProducer(h, runID: name, experiment: "poison", name: name)
            try p.metric("loss", 1, step: 1)
            try p.flush()
        }
        for d in h.runDirectories() { dirs[String(d.split(separator: "_").last!)] = d }
        h.stop(signal: SIGKILL)
        // corrupt: garbage bytes; hostile: a valid frame with negative offsets and counts.
        try Data([0xFF, 0x00, 0x13]).write(to: URL(fileURLWithPath: h.dataRoot + "/" + dirs["corrupt"]! + "/.logd-checkpoint"))
        let hostile: Value = ["format": "logd-checkpoint-1", "identity": "00", "main_log": [.int(-1), .int(-5)], "metric_count": .int(-9)]
        try Data(FrameEncoder().frame(.params(hostile))).write(to: URL(fileURLWithPath: h.dataRoot + "/" + dirs["hostile"]! + "/.logd-checkpoint"))
        try "../../../etc\nx\n".write(toFile: h.dataRoot + "/.logd/active/0000000000000bad", atomically: true, encoding: .utf8)
        try h.start()
        #expect(alive(h))
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: h.dataRoot + "/.logd/quarantine")
        #expect(quarantined.count == 3, "\(quarantined)")
        #expect(FileManager.default.fileExists(atPath: h.dataRoot + "/" + dirs["corrupt"]! + "/.logd-checkpoint.quarantined"))
        // The good run resumes: its producer comes back and ends it.
        let st = try h.status()
        guard case .list(let runs)? = st["runs"] else { Issue.record("no runs in status"); return }
        #expect(runs.contains { $0["run_id"] == .string("good") }, "\(st.jsonText())")
        #expect(h.stop() == 0)
    }

    @Test("limits: keys, params, pending flushes and partial frames are bounded; past a limit one client gets an error, others go on")
    func hostileClientLimits() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start([
            "--config",
            try config(
                h,
                """
                max_frame_bytes: 65536
                max_partial_frame_bytes: 65536
                max_keys_per_run: 10
                max_params_bytes_per_run: 65536
                max_pending_barriers: 4
                """),
        ])
        // Keys: 25 distinct keys, 10 kept; the connection goes on, the refused keys' metrics counted.
        let p = try RawProducer(h, runID: "keys", experiment: "limits", name: "keys")
        for k in 0..<25 { try p.metric("k\(k)", Double(k), step: 1) }
        // The same key defined again on a second connection of the run reuses its slot.
        try p.flush()
        // Params: 40 frames of ~4 KiB; about 16 fit in 64 KiB, the rest are refused.
        for i in 0..<40 { try p.send([.params(["block\(i)": .string(String(repeating: "x", count: 4000))])]) }
        try p.flush()
        try p.end()
        let dir = h.runDirectories().first ?? ""
        let keys = Set(metricRows(h.read(dir + "/metrics.csv")).map(\.key))
        #expect(keys.count == 10, "\(keys.sorted())")
        let config = h.read(dir + "/config.yaml")
        #expect(config.contains("block0:") && !config.contains("block39:"))
        let st = try h.status()
        if case .int(let refused)? = st["totals"]?["records_refused"] { #expect(refused >= 15 + 15) } else { Issue.record("no records_refused") }
        // Pending flushes: a client that sends FLUSH without ever reading is cut off at the limit.
        let flooder = try RawProducer(h, runID: "flood", experiment: "limits", name: "flood")
        try flooder.send((1...50).map { .flush(token: UInt64($0)) })
        var sawRefused = false
        while let r = try? flooder.socket.receive(timeoutMs: 3000) {
            if case .error(let e) = r { sawRefused = e.code == .refused; break }
        }
        #expect(sawRefused, "FLUSH flood gets ERROR refused")
        // Partial frames: two clients announce 60 KiB frames; the budget (64 KiB) holds one.
        let a = try WireSocket(path: h.socket)
        let b = try WireSocket(path: h.socket)
        let bigFrame = try FrameEncoder(limits: WireLimits(maxFrameBytes: 65536)).frame(
            .hello(
                Hello(
                    role: .producer, pid: 1, session: SessionID(high: 9, low: 9), firstSeq: 1, clientName: String(repeating: "c", count: 4000),
                    clientVersion: "1")))
        _ = bigFrame
        var header: [UInt8] = []
        let length = UInt32(60_000)
        withUnsafeBytes(of: length.littleEndian) { header += $0 }
        try a.sendBytes(header + [UInt8](repeating: 1, count: 1000))
        usleep(200_000)
        try b.sendBytes(header + [UInt8](repeating: 1, count: 1000))
        if case .error(let e) = try b.receive(timeoutMs: 5000) {
            #expect(e.code == .refused)
        } else {
            Issue.record("the second partial frame is refused")
        }
        #expect(alive(h))
        #expect(h.stop() == 0)
    }

    @Test(
        "disk full (injected ENOSPC): no acknowledgement while writes fail, status shows it, logd resumes by itself; every row exactly once, no torn line"
    )
    func diskFullResumes() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.startWithDiskFault()
        let p = try RawProducer(h, runID: "full", experiment: "disk", name: "full")
        for step in 0..<500 { try p.metric("loss", Double(step), step: Int64(step)) }
        #expect(try p.flush().status == .ok)
        try h.diskFull(true)
        for step in 500..<3000 { try p.metric("loss", Double(step), step: Int64(step)) }
        let failed = try p.flush(timeoutMs: 30_000)
        #expect(failed.status == .failed, "a flush while the disk is full fails")
        #expect(failed.durableThrough < 3000, "nothing past the failure is acknowledged")
        let st = try h.status()
        #expect(st["writer"]?["blocked"] == .bool(true), "\(st.jsonText())")
        try h.diskFull(false)
        #expect(DaemonTests.flushSucceeds(p), "logd resumes by itself once space returns")
        try p.end()
        let dir = h.runDirectories().first ?? ""
        let csv = h.read(dir + "/metrics.csv")
        let lines = csv.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().filter { !$0.isEmpty }
        #expect(lines.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 7 }, "no torn line")
        let steps = metricRows(csv).map(\.step)
        #expect(steps == Array(0..<3000), "every row once, in order (got \(steps.count))")
        #expect(h.stop() == 0)
    }

    @Test("a run that starts while the disk is full is created once space returns, with every record: nothing is dropped with the failed mkdir")
    func runStartedOnAFullDisk() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.startWithDiskFault()
        try h.diskFull(true)
        let p = try RawProducer(h, runID: "late-space", experiment: "disk", name: "late")
        for step in 0..<200 { try p.metric("loss", Double(step), step: Int64(step)) }
        #expect(try p.flush(timeoutMs: 30_000).status == .failed, "no run directory yet: the flush fails")
        #expect(h.runDirectories().isEmpty)
        try h.diskFull(false)
        #expect(DaemonTests.flushSucceeds(p), "the run is created and written once space returns")
        try p.end()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        #expect(metricRows(h.read((dirs.first ?? "") + "/metrics.csv")).map(\.step) == Array(0..<200))
        #expect(h.stop() == 0)
    }

    /// Starts logd armed to SIGKILL itself at `point`, runs a producer with resend through the
    /// crash and a restart, and checks the exactly-once oracle: one directory for the run id,
    /// every row once, the right final status. `between`: done to the data root while logd is
    /// down (what a power failure could leave).
    private func crashAt(_ point: String, metrics: Int = 3000, between: ((DaemonHarness) throws -> Void)? = nil) throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        h.environment = ["LOGD_FAULT_POINT": point]
        try h.start()
        let p = try h.producer([
            "--run-id", "fault-\(point)", "--experiment", "faults", "--metrics", "\(metrics)", "--logs", "50", "--retry-seconds", "60",
        ])
        #expect(h.waitForExit(timeout: 60), "logd reached fault point \(point)")
        try between?(h)
        h.environment = [:]
        try h.start()
        #expect(waitAll([p], timeout: 120))
        #expect(p.terminationStatus == 0, "the producer completes after the restart (\(point))")
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "one run id, one directory (\(point)): \(dirs)")
        if let dir = dirs.first {
            let rows = metricRows(h.segments(dir, stem: "metrics", ext: "csv").joined(separator: "\n"))
            #expect(rows.count == metrics, "every metric exactly once (\(point)): \(rows.count)")
            #expect(h.read(dir + "/run.yaml").contains("status: finished"), "status finished (\(point))")
        }
        #expect(h.stop() == 0)
    }

    @Test(
        "kill -9 at each named step of the run lifecycle: after a restart the run is one directory, every row once, status finished",
        arguments: [
            "after-mkdir", "before-marker", "after-marker", "before-checkpoint", "after-checkpoint:2", "before-marker-removal",
            "after-marker-removal",
        ])
    func faultPointRestart(point: String) throws { try crashAt(point) }

    @Test(
        "a run's first checkpoint found empty after a restart (a power failure before the run's first durability point): the never-acknowledged directory is removed, not left behind or quarantined"
    )
    func emptyFirstCheckpointIsRemoved() throws {
        var emptied = ""
        try crashAt("after-checkpoint") { h in
            // The kill came right after the first checkpoint, written without fsync: empty it.
            let dirs = h.runDirectories()
            #expect(dirs.count == 1, "\(dirs)")
            emptied = dirs.first ?? ""
            let path = h.dataRoot + "/" + emptied + "/.logd-checkpoint"
            #expect(FileManager.default.fileExists(atPath: path))
            try Data().write(to: URL(fileURLWithPath: path))
        }
        #expect(!emptied.isEmpty)
    }

    @Test("a producer that starts after its run ended (a late fork, a late DDP rank) joins the same directory")
    func lateProducerReopensFinishedRun() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let first = try h.producer(["--run-id", "late", "--experiment", "late", "--metrics", "100"])
        #expect(waitAll([first]))
        try h.flush()
        #expect(h.read(h.runDirectories().first! + "/run.yaml").contains("status: finished"))
        let second = try h.producer(["--run-id", "late", "--experiment", "late", "--metrics", "100", "--rank", "1"])
        #expect(waitAll([second]))
        try h.flush()
        // And after a restart too.
        h.stop()
        try h.start()
        let third = try h.producer(["--run-id", "late", "--experiment", "late", "--metrics", "100", "--rank", "2"])
        #expect(waitAll([third]))
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        let rows = metricRows(h.read(dirs.first! + "/metrics.csv"))
        #expect(rows.count == 300)
        #expect(Set(rows.map(\.rank)) == [0, 1, 2])
        #expect(h.read(dirs.first! + "/run.yaml").contains("status: finished"))
        #expect(h.stop() == 0)
    }

    @Test("multi-node: a logd that sees 2 of 4 ranks ends the run rank_wait_s after they end (it stays running while the wait lasts)")
    func partialWorldEndsAfterRankWait() throws {
        for wait in [3600, 1] {
            let h = try DaemonHarness()
            defer { h.shutdown() }
            let config = h.root + "/logd.yaml"
            try "rank_wait_s: \(wait)\n".write(toFile: config, atomically: true, encoding: .utf8)
            try h.start(["--config", config])
            let ranks = try (0..<2).map { r in
                try h.producer(["--run-id", "mn", "--experiment", "mn", "--metrics", "50", "--rank", "\(r)", "--world-size", "4"])
            }
            #expect(waitAll(ranks))
            try h.flush()
            let dir = h.runDirectories().first ?? ""
            // The run's own status line (producers' statuses are indented below `producers:`).
            func runStatus() -> String { h.read(dir + "/run.yaml").split(separator: "\n").first { $0.hasPrefix("status: ") }.map(String.init) ?? "" }
            if wait == 3600 {
                #expect(runStatus() == "status: running", "the other 2 ranks may still come")
            } else {
                // The tick ends it about a second later; poll (bounded) rather than sleep once.
                var status = ""
                for _ in 0..<300 {
                    try h.flush()
                    status = runStatus()
                    if status == "status: finished" { break }
                    usleep(100_000)
                }
                #expect(status == "status: finished")
                #expect(metricRows(h.read(dir + "/metrics.csv")).count == 100)
            }
            #expect(h.stop() == 0)
        }
    }

    @Test("run directories are 0750 and files 0640; a socket directory that others may write is refused, one logd did not create is not chmod-ed")
    func permissions() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try RawProducer(h, runID: "perm", experiment: "perm", name: "perm")
        try p.metric("loss", 1, step: 1)
        try p.end()
        let dir = h.runDirectories().first ?? ""
        let fm = FileManager.default
        #expect((try fm.attributesOfItem(atPath: h.dataRoot + "/" + dir)[.posixPermissions] as? Int) == 0o750)
        #expect((try fm.attributesOfItem(atPath: h.dataRoot + "/" + dir + "/metrics.csv")[.posixPermissions] as? Int) == 0o640)
        #expect((try fm.attributesOfItem(atPath: h.dataRoot + "/" + dir + "/run.yaml")[.posixPermissions] as? Int) == 0o640)
        h.stop()
        // A world-writable socket directory (no sticky bit) is refused with a clear message.
        let open = h.root + "/open"
        try fm.createDirectory(atPath: open, withIntermediateDirectories: true)
        chmod(open, 0o777)
        let bad = Process()
        bad.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
        bad.arguments = ["--socket", open + "/logd.sock", "--data-root", h.dataRoot]
        let err = Pipe()
        bad.standardError = err
        try bad.run()
        bad.waitUntilExit()
        #expect(bad.terminationStatus != 0)
        #expect(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("writable by other users"))
        // A pre-existing 0755 directory is used as it is, not chmod-ed.
        let mine = h.root + "/mine"
        try fm.createDirectory(atPath: mine, withIntermediateDirectories: true)
        chmod(mine, 0o755)
        let ok = Process()
        ok.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
        ok.arguments = ["--socket", mine + "/logd.sock", "--data-root", h.dataRoot]
        ok.standardError = FileHandle.nullDevice
        try ok.run()
        for _ in 0..<200 where !fm.fileExists(atPath: mine + "/logd.sock") { usleep(20_000) }
        kill(ok.processIdentifier, SIGTERM)
        ok.waitUntilExit()
        #expect((try fm.attributesOfItem(atPath: mine)[.posixPermissions] as? Int) == 0o755)
    }

    /// Runs logd with `arguments`; returns (exit status, stdout, stderr).
    private func logd(_ arguments: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test("config: anchors are refused, an error is one line whatever the value holds, --print-config loads back with control characters")
    func configEdges() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let anchors = try config(h, "socket: &a \"/tmp/x.sock\"\n")
        let (s1, _, e1) = try logd(["--config", anchors])
        #expect(s1 == 2 && e1.contains("anchors are not allowed"), "\(e1)")
        let multi = try config(h, "max_connections: \"1\\n2\\n3\"\n")
        let (s2, _, e2) = try logd(["--config", multi])
        #expect(s2 == 2)
        #expect(e2.split(separator: "\n").count == 1, "one line: \(e2)")
        let control = try config(h, "data_root: \"/tmp/a\\x01b\\tc\"\n")
        let (s3, printed, _) = try logd(["--config", control, "--print-config"])
        #expect(s3 == 0)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        load.arguments = [
            "python3", "-c", "import sys, yaml; d = yaml.safe_load(sys.stdin); assert d['data_root'] == '/tmp/a\\x01b\\tc', repr(d['data_root'])",
        ]
        let input = Pipe()
        load.standardInput = input
        try load.run()
        input.fileHandleForWriting.write(Data(printed.utf8))
        try input.fileHandleForWriting.close()
        load.waitUntilExit()
        #expect(load.terminationStatus == 0, "--print-config output loads back with PyYAML: \(printed)")
    }

    @Test("artifact names keep '/' as folders below artifacts/, and '..' or absolute parts never leave it")
    func artifactSubpaths() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let source = h.root + "/image.png"
        try Data("png".utf8).write(to: URL(fileURLWithPath: source))
        let p = try RawProducer(h, runID: "paths", experiment: "paths", name: "paths")
        for name in ["images/loss/3.png", "images/loss/3.png", "/abs/../../escape.png", "a/../../b"] {
            let fd = open(source, O_RDONLY)
            try p.send(
                .artifact(Artifact(context: "training", step: 3, role: .output, mode: .copy, fileName: name, originalPath: source)), passing: fd)
            close(fd)
        }
        try p.end()
        let dir = h.dataRoot + "/" + (h.runDirectories().first ?? "")
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: dir + "/artifacts/images/loss/3.png"))
        #expect(fm.fileExists(atPath: dir + "/artifacts/images/loss/3_2.png"), "a second copy of one name gets a suffix")
        #expect(fm.fileExists(atPath: dir + "/artifacts/abs/_./_./escape.png"))
        #expect(fm.fileExists(atPath: dir + "/artifacts/a/_./_./b"))
        #expect(!fm.fileExists(atPath: h.dataRoot + "/escape.png") && !fm.fileExists(atPath: h.dataRoot + "/paths/b"))
        #expect(h.stop() == 0)
    }

    @Test("SIGTERM the moment the socket accepts still drains and exits 0 (20 times: signals are handled before the socket listens)")
    func sigtermRightAfterStart() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        for _ in 0..<20 {
            try h.start()
            #expect(h.stop(signal: SIGTERM) == 0)
        }
    }
}

extension DaemonHarness {
    /// Starts logd with the ENOSPC fault point armed (LOGD_FAULT_ENOSPC); `diskFull` turns it on and off.
    func startWithDiskFault() throws {
        environment["LOGD_FAULT_ENOSPC"] = root + "/enospc"
        try start()
    }

    /// While on, every write of this logd fails with ENOSPC.
    func diskFull(_ full: Bool) throws {
        if full {
            FileManager.default.createFile(atPath: root + "/enospc", contents: nil)
        } else {
            try FileManager.default.removeItem(atPath: root + "/enospc")
        }
    }
}

extension DaemonTests {
    /// Flushes until logd answers `ok` (it retries its writes by itself once space returns);
    /// false if it never does within 100 tries of up to 10 s.
    static func flushSucceeds(_ p: RawProducer) -> Bool {
        for _ in 0..<100 where (try? p.flush(timeoutMs: 10_000))?.status == .ok { return true }
        return false
    }
}
