import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// Raw socket helpers for sending hostile bytes.
func rawConnect(_ path: String) throws -> WireSocket { try WireSocket(path: path) }

extension DaemonTests {
    @Test("bad input closes only that connection; others go on; memory stays bounded")
    func badInput() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let good = try h.producer(["--run-id", "good", "--experiment", "robust", "--metrics", "20000", "--logs", "100"])

        // A 4 GiB length prefix.
        let huge = try rawConnect(h.socket)
        try huge.sendBytes([0xFF, 0xFF, 0xFF, 0xFF, 0x22])
        // Random garbage (seeded).
        var rng = UInt64(0x5EED)
        let garbage = (0..<4096).map { _ -> UInt8 in
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 33)
        }
        let noise = try rawConnect(h.socket)
        try noise.sendBytes(garbage)
        // A valid HELLO, then a frame cut off mid-way and a disconnect.
        do {
            let cut = try rawConnect(h.socket)
            let hello = Hello(role: .producer, pid: 1, session: SessionID(high: 9, low: 9), firstSeq: 1, clientName: "t", clientVersion: "0")
            try cut.send([.hello(hello)])
            // Read the WELCOME first: closing with unread data makes the daemon's recv fail with
            // ECONNRESET instead of seeing the half frame and then end of stream.
            _ = try cut.receive(timeoutMs: 5000)
            let frame = try FrameEncoder().frame(.log(LogLine(level: .info, timestamp: 0, logger: "x", message: "half a frame")))
            try cut.sendBytes(Array(frame.prefix(10)))
        }
        // A client that connects and sends nothing; and 1,000 idle connections.
        let silent = try rawConnect(h.socket)
        var idle: [WireSocket] = []
        for _ in 0..<1000 { idle.append(try rawConnect(h.socket)) }
        // Data before HELLO is a protocol violation.
        let early = try rawConnect(h.socket)
        try early.send([.ack(durableThrough: 1)])

        // The bad connections get an ERROR frame and are closed.
        for s in [huge, noise, early] {
            var sawError = false
            do {
                while true {
                    if case .error = try s.receive(timeoutMs: 5000) { sawError = true }
                }
            } catch WireSocket.Failure.closed {
            } catch {
                Issue.record("expected the daemon to close the connection, got \(error)")
            }
            #expect(sawError)
        }
        #expect(waitAll([good], timeout: 120))
        #expect(good.terminationStatus == 0)
        let status = try h.status()
        guard case .map = status, case .list(let conns)? = status["connections"], case .int(let malformed)? = status["totals"]?["malformed_frames"]
        else {
            Issue.record("status has no connections/totals: \(status.jsonText())")
            return
        }
        #expect(conns.count >= 1001, "idle connections are kept: \(conns.count)")
        #expect(malformed >= 4, "malformed frames counted: \(malformed)")
        let rss = h.daemonPeakRSS()
        #expect(rss > 0 && rss < 256 << 20, "peak RSS \(rss >> 20) MiB")
        let dirs = h.runDirectories()
        #expect(dirs.count == 1)
        if let dir = dirs.first { Self.verifyRun(h, dir, ranks: [0], metrics: 20_000, logs: 100) }
        _ = silent
        idle.removeAll()
        #expect(h.stop() == 0)
        // One line per kind of problem, not one per frame.
        #expect(h.daemonStderr().split(separator: "\n").count < 50)
    }

    @Test("hostile experiment and run names never leave the data root; a planted symlink is not followed")
    func hostileNames() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let outside = h.root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: h.dataRoot, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: h.dataRoot + "/planted", withDestinationPath: outside)
        try h.start()
        let names = ["..", "/abs", "a/../../b", "nul\u{0}byte", String(repeating: "x", count: 4096), "planted", ".logd", "."]
        var producers: [Process] = []
        for (i, name) in names.enumerated() {
            producers.append(try h.producer(["--run-id", "hostile-\(i)", "--experiment", name, "--name", name, "--metrics", "10"]))
        }
        #expect(waitAll(producers))
        for p in producers { #expect(p.terminationStatus == 0) }
        try h.flush()
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "something was written through the symlink")
        let rootEntries = Set(try FileManager.default.contentsOfDirectory(atPath: h.root))
        #expect(rootEntries.isSubset(of: ["sock", "data", "outside", "logd.stderr"]), "\(rootEntries)")
        let dirs = h.runDirectories().filter { !$0.hasPrefix("planted/") }
        #expect(dirs.count == names.count, "\(dirs)")
        for dir in dirs {
            for part in dir.split(separator: "/") {
                #expect(!part.hasPrefix(".") && part.utf8.count <= 200 && !part.contains("\u{0}"), "unsafe component \(part)")
            }
            #expect(metricRows(h.read(dir + "/metrics.csv")).count == 10)
        }
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: h.dataRoot + "/planted_2", isDirectory: &isDir) && isDir.boolValue)
        #expect(h.stop() == 0)
    }

    @Test("socket directory is 0700 and the socket 0600; peer pid comes from the kernel")
    func socketPermissions() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let dirAttrs = try FileManager.default.attributesOfItem(atPath: h.root + "/sock")
        let sockAttrs = try FileManager.default.attributesOfItem(atPath: h.socket)
        #expect((dirAttrs[.posixPermissions] as? Int) == 0o700)
        #expect((sockAttrs[.posixPermissions] as? Int) == 0o600)
        let s = try rawConnect(h.socket)
        try s.send([
            .hello(Hello(role: .producer, pid: 424_242, session: SessionID(high: 1, low: 2), firstSeq: 1, clientName: "liar", clientVersion: "1"))
        ])
        _ = try s.receive(timeoutMs: 5000)
        let status = try h.status()
        guard case .list(let conns)? = status["connections"] else { Issue.record("no connections"); return }
        let liar = conns.first { $0["client"] == "liar" }
        #expect(liar?["pid"] == .int(Int64(getpid())), "pid must come from SO_PEERCRED, not HELLO")
        #expect(liar?["uid"] == .int(Int64(getuid())))
        #expect(h.stop() == 0)
    }

    @Test("a stale socket file is replaced; a second daemon on a live socket refuses to start")
    func staleAndSecondInstance() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        // Second instance on the same socket.
        let second = Process()
        second.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
        second.arguments = ["--socket", h.socket, "--data-root", h.dataRoot + "2"]
        let err = Pipe()
        second.standardError = err
        try second.run()
        second.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(second.terminationStatus == 1)
        #expect(message.contains("already running"), "\(message)")
        // Kill -9 leaves the socket file behind; a new daemon replaces it.
        h.stop(signal: SIGKILL)
        #expect(FileManager.default.fileExists(atPath: h.socket))
        try h.start()
        let p = try h.producer(["--run-id", "after-stale", "--metrics", "100"])
        #expect(waitAll([p]))
        #expect(p.terminationStatus == 0)
        #expect(h.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: h.socket), "a drained daemon removes its socket")
    }

    @Test("config files: errors name the key, line and column; unknown keys are refused; --print-config")
    func configErrors() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        func runLogd(_ args: [String]) throws -> (Int32, String, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
            p.arguments = args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, o, e)
        }
        let bad = h.root + "/bad.yaml"
        try "rotate_bytes: 65536\nsocket_mode: 777\n".write(toFile: bad, atomically: true, encoding: .utf8)
        var (code, _, err) = try runLogd(["--config", bad, "--print-config"])
        #expect(code == 2)
        #expect(err.contains("bad.yaml:2:1: unknown key 'socket_mode'"), "\(err)")
        try "rotate_bytes: lots\n".write(toFile: bad, atomically: true, encoding: .utf8)
        (code, _, err) = try runLogd(["--config", bad, "--print-config"])
        #expect(code == 2)
        #expect(err.contains("bad.yaml:1:1: rotate_bytes: expected an integer"), "\(err)")
        let good = h.root + "/good.yaml"
        try "# tuned\nrotate_bytes: 1_048_576\nlog_level: debug\n".write(toFile: good, atomically: true, encoding: .utf8)
        let (ok, out, _) = try runLogd(["--config", good, "--print-config", "--socket", "/tmp/x.sock"])
        #expect(ok == 0)
        #expect(out.contains("rotate_bytes: 1048576"))
        #expect(out.contains("log_level: \"debug\""))
        #expect(out.contains("socket: \"/tmp/x.sock\""), "flags override the file")
    }
}

extension DaemonTests {
    @Test("packaging/logd.yaml is a valid config that covers every key logd prints")
    func exampleConfigCoversEveryKey() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("packaging/logd.yaml"), encoding: .utf8)
        var config = LogdConfig(environment: [:])
        try config.apply(yaml: text, fileName: "logd.yaml")
        let documented = Set(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains(":") }
                .map { String($0.split(separator: ":")[0]) })
        let printed = Set(
            config.rendered().split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains(":") }
                .map { String($0.split(separator: ":")[0]) })
        #expect(documented == printed)
    }

    @Test("run.yaml loads with PyYAML and passes yamllint")
    func runYAMLValidates() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.start()
        let p = try h.producer(["--run-id", "yaml", "--experiment", "yes", "--name", "null", "--metrics", "10"])
        #expect(waitAll([p]))
        try h.flush()
        guard let dir = h.runDirectories().first else { Issue.record("no run"); return }
        let path = h.dataRoot + "/" + dir + "/run.yaml"
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = [
            "python3", "-c",
            """
            import sys, yaml
            d = yaml.safe_load(open(sys.argv[1]))
            assert d['experiment'] == 'yes' and d['name'] == 'null', d
            assert d['status'] == 'finished' and d['records']['metrics'] == 10, d
            assert isinstance(d['seed'], type(None)) and d['world_size'] == 1
            """,
            path,
        ]
        try check.run()
        check.waitUntilExit()
        #expect(check.terminationStatus == 0, "PyYAML could not load run.yaml as expected")
        let lint = Process()
        lint.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        lint.arguments = ["python3", "-m", "yamllint", "--strict", "-c", root.appendingPathComponent(".yamllint.yaml").path, path]
        try lint.run()
        lint.waitUntilExit()
        #expect(lint.terminationStatus == 0, "yamllint rejected run.yaml")
        #expect(h.stop() == 0)
    }
}

extension DaemonTests {
    @Test("backpressure: with a tiny writer queue the loop pauses reading, memory stays small, nothing is lost")
    func backpressureTinyQueue() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let config = h.root + "/tiny.yaml"
        try "max_frame_bytes: 4096\nwriter_queue_bytes: 8192\n".write(toFile: config, atomically: true, encoding: .utf8)
        try h.start(["--config", config])
        var producers: [Process] = []
        for rank in 0..<8 {
            producers.append(
                try h.producer([
                    "--run-id", "bp", "--experiment", "bp", "--rank", "\(rank)", "--world-size", "8", "--metrics", "20000", "--logs", "200",
                ]))
        }
        #expect(waitAll(producers, timeout: 240))
        for p in producers { #expect(p.terminationStatus == 0) }
        let status = try h.status()
        guard case .int(let pauses)? = status["writer"]?["backpressure_pauses"] else {
            Issue.record("status has no writer.backpressure_pauses: \(status.jsonText())")
            return
        }
        #expect(pauses > 0, "an 8 KiB queue under 8 producers must make the loop stop reading")
        #expect(status["writer"]?["backpressure"] == .bool(false), "reading resumes once the queue drains")
        let rss = h.daemonPeakRSS()
        #expect(rss > 0 && rss < 96 << 20, "peak RSS \(rss >> 20) MiB")
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1)
        if let dir = dirs.first { Self.verifyRun(h, dir, ranks: Set(0..<8), metrics: 20_000, logs: 200) }
        #expect(h.stop() == 0)
    }
}
