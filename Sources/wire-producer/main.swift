// wire-producer: a raw Wire client that logs a known pattern into one run, for the daemon's
// integration tests and benchmarks. It keeps every frame until logd acknowledges it, and on a
// lost connection reconnects (with its session id) and resends what was not acknowledged —
// the minimum a producer must do for "nothing lost, nothing duplicated".
//
// Pattern: key `m<k>` (k = i mod --keys) in context `training`, step i, value i, for
// i in 0..<--metrics; log line j says "rank <r> line <j>". Exit 0 once everything is durable.
import ArgumentParser
import LogdRead
import LogdSystem
import Wire

#if canImport(Glibc)
    import Glibc
#endif

struct Producer: ParsableCommand {
    @Option(help: "logd's socket (default: as logd resolves it).")
    var socket: String = DefaultPaths.socket(DefaultPaths.environment())
    @Option var runID: String
    @Option var experiment = "test"
    @Option var name = "run"
    @Option var session: String?
    @Option var rank: Int32 = 0
    @Option var worldSize: Int32 = 1
    @Option var metrics = 1000
    @Option var logs = 0
    @Option var keys = 1
    @Option(help: "Metrics per METRIC_BATCH frame; 0 sends single METRIC frames.") var batch = 0
    @Option(help: "finished, failed, killed, or none (exit without RUN_END).") var end = "finished"
    @Option(help: "Seconds to keep retrying to connect and resend.") var retrySeconds = 30.0
    @Option(help: "Microseconds to sleep between 64 KiB sends (to stretch a run for kill tests).") var pauseMicros = 0
    @Option(help: "Send a PARAMS frame every N metrics (0: none): {progress: {step, lr, note}, block: {k0…}}.") var paramsEvery = 0
    @Option(help: "Entries in each PARAMS frame's `block` map (a bigger config.yaml and prov.json).") var paramsKeys = 8
    @Option(help: "Write the byte stream a first connection would send (HELLO, RUN_START, keys, frames) to this file and exit.")
    var dump: String?

    func run() throws {
        let session =
            session.flatMap(SessionID.init(hex:)) ?? SessionID(high: UInt64.random(in: 1...UInt64.max), low: UInt64.random(in: 0...UInt64.max))
        var frames: [[UInt8]] = []
        let enc = FrameEncoder()
        let t0: Int64 = 1_700_000_000_000_000_000
        frames.append(
            try enc.frame(
                .runStart(
                    RunStart(
                        runID: runID, experiment: experiment, name: name, rank: rank, worldSize: worldSize, host: "testhost",
                        commandLine: ["wire-producer"], startTime: 0))))
        let logEvery = logs > 0 ? max(1, metrics / logs) : Int.max
        var logged = 0
        var pending: [Metric] = []
        func flushBatch() throws {
            guard !pending.isEmpty else { return }
            frames.append(try enc.frame(.metricBatch(pending)))
            pending.removeAll()
        }
        func params(_ i: Int) -> Value {
            var block: [(key: String, value: Value)] = []
            for k in 0..<paramsKeys {
                let v: Value = k % 3 == 0 ? .string("value \(k)") : k % 3 == 1 ? .double(Double(k) * 0.5) : .int(Int64(k))
                block.append((key: "k\(k)", value: v))
            }
            return [
                "progress": ["step": .int(Int64(i)), "lr": .double(Double(i) * 1e-5), "note": .string("yes")],
                "block": .map(block),
            ]
        }
        for i in 0..<metrics {
            if paramsEvery > 0, i % paramsEvery == 0 {
                try flushBatch()
                frames.append(try enc.frame(.params(params(i))))
            }
            let m = Metric(keyID: UInt32(i % keys), step: Int64(i), timestamp: t0 + Int64(i) * 1_000_000, value: Double(i))
            if batch > 0 {
                pending.append(m)
                if pending.count == batch { try flushBatch() }
            } else {
                frames.append(try enc.frame(.metric(m)))
            }
            if logged < logs, i % logEvery == 0 {
                try flushBatch()
                frames.append(
                    try enc.frame(
                        .log(LogLine(level: .info, timestamp: t0 + Int64(i) * 1_000_000, logger: "train", message: "rank \(rank) line \(logged)"))))
                logged += 1
            }
        }
        try flushBatch()
        while logged < logs {
            frames.append(try enc.frame(.log(LogLine(level: .info, timestamp: t0, logger: "train", message: "rank \(rank) line \(logged)"))))
            logged += 1
        }
        if let status = ["finished": RunStatus.finished, "failed": .failed, "killed": .killed][end] {
            frames.append(try enc.frame(.runEnd(RunEnd(status: status, timestamp: t0 + Int64(metrics) * 1_000_000))))
        }
        var keyDefs: [UInt8] = []
        for k in 0..<keys { try enc.encode(.metricKey(MetricKey(id: UInt32(k), key: "m\(k)", context: "training")), into: &keyDefs) }

        if let dump {
            var out: [UInt8] = []
            try enc.encode(
                .hello(Hello(role: .producer, pid: 1, session: session, firstSeq: 1, clientName: "wire-producer", clientVersion: "0.1.0")),
                into: &out)
            out += frames[0] + keyDefs
            for f in frames.dropFirst() { out += f }
            let fd = open(dump, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw ValidationError("cannot create \(dump)") }
            defer { close(fd) }
            guard (out.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }) == out.count else { throw ValidationError("short write to \(dump)") }
            return
        }
        let deadline = monotonicSeconds() + retrySeconds
        var acked: UInt64 = 0
        var token: UInt64 = 0
        while acked < UInt64(frames.count) {
            guard monotonicSeconds() < deadline else {
                fputsErr("wire-producer: gave up with \(UInt64(frames.count) - acked) frames unacknowledged\n")
                throw ExitCode(1)
            }
            do {
                let s = try WireSocket(path: socket)
                // HELLO numbers the first frame sent here `first`: resend from exactly that frame,
                // even when WELCOME says more is durable (the daemon skips what it has). Starting
                // later would shift the daemon's numbering: frames lost, others written twice.
                let first = acked + 1
                try s.send([
                    .hello(
                        Hello(
                            role: .producer, pid: UInt32(getpid()), session: session, firstSeq: first, clientName: "wire-producer",
                            clientVersion: "0.1.0"))
                ])
                guard case .welcome(let w) = try s.receive(timeoutMs: 5000) else { throw WireSocket.Failure.protocolError("no WELCOME") }
                acked = max(acked, w.durableThrough)
                var out: [UInt8] = []
                var i = Int(first - 1)  // frames[k] is frame number k + 1
                if i == 0 {
                    out += frames[0]  // RUN_START before the key definitions
                    i = 1
                }
                out += keyDefs
                while i < frames.count {
                    out += frames[i]
                    i += 1
                    if out.count >= 64 << 10 {
                        try s.sendBytes(out)
                        out.removeAll(keepingCapacity: true)
                        for r in try s.receiveAvailable() { if case .ack(let n) = r { acked = max(acked, n) } }
                        if pauseMicros > 0 { usleep(UInt32(pauseMicros)) }
                    }
                }
                token += 1
                try enc.encode(.flush(token: token), into: &out)
                try s.sendBytes(out)
                while true {
                    let r = try s.receive(timeoutMs: 60_000)
                    if case .ack(let n) = r { acked = max(acked, n) }
                    if case .flushDone(let f) = r, f.token == token {
                        acked = max(acked, f.durableThrough)
                        break
                    }
                }
                if acked < UInt64(frames.count) { fputsErr("wire-producer: flush covered \(acked) of \(frames.count)\n") }
            } catch {
                usleep(50_000)
            }
        }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func fputsErr(_ s: String) { FileOutput.stderr(s) }

Producer.main()
