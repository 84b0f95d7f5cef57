import Foundation
import LogSDK
import Testing
import Wire

/// The SDK sends runs of metrics as METRIC_BATCH frames (one numbered frame each). A scripted
/// daemon on a real Unix socket records every frame with the number the protocol gives it,
/// acknowledges like logd, can cut the connection, and checks that a resent frame is the very
/// frame first sent under that number — the property logd's de-duplication relies on.
@Suite("LogSDK batching")
struct BatchingTests {
    @Test("consecutive metrics go out as METRIC_BATCH frames of at most 146; every sample once, in order")
    func metricsTravelInBatches() throws {
        let daemon = try ScriptedDaemon()
        defer { daemon.stop() }
        let run = Run(experiment: "unit", name: "batch", sink: .daemon(socket: daemon.path))
        let k = run.key("loss")
        for i in 0..<5_000 { run.metric(k, Double(i), step: Int64(i)) }
        run.log("between")  // another frame ends the open batch: later metrics follow it
        for i in 5_000..<10_000 { run.metric(k, Double(i), step: Int64(i)) }
        let report = run.finish(timeout: 20)
        #expect(report.completed && report.logged == 10_003 && report.acknowledged == 10_003, "\(report)")
        let frames = daemon.frames
        #expect(!frames.contains { if case .metric = $0.record { true } else { false } })
        let batches = frames.compactMap { f -> [Metric]? in if case .metricBatch(let ms) = f.record { ms } else { nil } }
        #expect(batches.allSatisfy { !$0.isEmpty && $0.count <= 146 })
        #expect(batches.count < 1_000 && batches.contains { $0.count == 146 }, "\(batches.count) batches")
        let sent = batches.flatMap { $0 }.map(\.step)
        let inOrder = sent == (0..<10_000).map(Int64.init)
        #expect(inOrder, "\(sent.count) samples sent; expected 0..<10,000 once each, in order")
        let logAt = frames.firstIndex { if case .log = $0.record { true } else { false } } ?? -1
        let before = frames[..<max(0, logAt)].reduce(0) { n, f in if case .metricBatch(let ms) = f.record { n + ms.count } else { n } }
        #expect(before == 5_000)
        #expect(frames.map(\.seq) == Array(1...UInt64(frames.count)), "frames numbered one by one")
    }

    @Test("a cut connection: unacknowledged batches are resent under the same numbers, byte for byte")
    func resendAfterCut() throws {
        let daemon = try ScriptedDaemon(ackAfterBatches: 10, cutAfterBatches: 30)
        defer { daemon.stop() }
        let run = Run(experiment: "unit", name: "resend", sink: .daemon(socket: daemon.path))
        let k = run.key("loss")
        for i in 0..<20_000 {
            run.metric(k, Double(i), step: Int64(i))
            if i % 500 == 0 { usleep(200) }  // spread over several sender looks
        }
        let report = run.finish(timeout: 20)
        #expect(report.completed && report.logged == 20_002 && report.acknowledged == 20_002, "\(report)")
        #expect(daemon.connections >= 2, "the connection was never cut")
        #expect(daemon.resent > 0, "nothing was resent")
        #expect(daemon.mismatches.isEmpty, "a resent frame differs: \(daemon.mismatches.prefix(3))")
        let steps = daemon.frames.flatMap { f -> [Int64] in if case .metricBatch(let ms) = f.record { ms.map(\.step) } else { [] } }
        let exact = steps == (0..<20_000).map(Int64.init)
        #expect(exact, "lost or duplicated samples: \(steps.count) kept of 20,000")
    }

    @Test("flush seals the open batch: what was logged before it is durable when it returns")
    func flushSealsTheOpenBatch() throws {
        let daemon = try ScriptedDaemon()
        defer { daemon.stop() }
        let run = Run(experiment: "unit", name: "flush", sink: .daemon(socket: daemon.path))
        let k = run.key("x")
        for round in 1...5 {
            for i in 0..<37 { run.metric(k, Double(i), step: Int64(round * 100 + i)) }
            #expect(run.flush(timeout: 10))
            let n = daemon.frames.reduce(0) { n, f in if case .metricBatch(let ms) = f.record { n + ms.count } else { n } }
            #expect(n == round * 37)
        }
        run.finish(timeout: 10)
    }
}

/// A minimal logd for tests: one connection at a time; WELCOME with what it holds, FLUSH_DONE
/// and (optionally) an ACK after `ackAfterBatches` batches; closes the first connection after
/// `cutAfterBatches` batches. Numbered frames are kept once each, by number.
final class ScriptedDaemon: @unchecked Sendable {
    struct Frame {
        var seq: UInt64
        var record: Record
    }

    let path: String
    private let dir: String
    private let listener: Int32
    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?
    private var held: [Frame] = []
    private var received: UInt64 = 0
    private var _connections = 0
    private var _resent = 0
    private var _mismatches: [UInt64] = []
    private let ackAfterBatches: Int?
    private let cutAfterBatches: Int?

    init(ackAfterBatches: Int? = nil, cutAfterBatches: Int? = nil) throws {
        self.ackAfterBatches = ackAfterBatches
        self.cutAfterBatches = cutAfterBatches
        dir = NSTemporaryDirectory() + "logd-sdk-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/d.sock"
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(listener, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        let t = Thread { [self] in serve() }
        thread = t
        t.start()
    }

    var frames: [Frame] { lock.withLock { held } }
    var connections: Int { lock.withLock { _connections } }
    var resent: Int { lock.withLock { _resent } }
    var mismatches: [UInt64] { lock.withLock { _mismatches } }

    func stop() {
        lock.withLock { stopping = true }
        while thread?.isFinished == false { usleep(1_000) }
        close(listener)
        try? FileManager.default.removeItem(atPath: dir)
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func serve() {
        var first = true
        while !isStopping {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 20) > 0 else { continue }
            let c = accept(listener, nil, nil)
            guard c >= 0 else { continue }
            lock.withLock { _connections += 1 }
            converse(c, cut: first ? cutAfterBatches : nil)
            close(c)
            first = false
        }
    }

    private func reply(_ c: Int32, _ r: Record) {
        var out: [UInt8] = []
        try? FrameEncoder().encode(r, into: &out)
        out.withUnsafeBytes { _ = send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// One connection: numbers frames from HELLO's first_seq, keeps new ones, compares resent
    /// ones with what it kept.
    private func converse(_ c: Int32, cut: Int?) {
        var decoder = StreamDecoder(decoder: FrameDecoder(limits: WireLimits(maxFrameBytes: 4096)))
        var next: UInt64 = 0
        var batches = 0
        var buf = [UInt8](repeating: 0, count: 65_536)
        while !isStopping {
            var pfd = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 20) > 0 else { continue }
            let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            decoder.feed(buf[0..<n])
            while true {
                let record: Record?
                do { record = try decoder.next() } catch { return }  // a frame over 4096 bytes: refused, as logd would
                guard let r = record else { break }
                switch r {
                case .hello(let h):
                    next = h.firstSeq
                    reply(c, .welcome(Welcome(durableThrough: lock.withLock { received }, maxFrameBytes: 4096, daemonVersion: "scripted")))
                case .flush(let token):
                    reply(c, .flushDone(FlushDone(token: token, status: .ok, durableThrough: lock.withLock { received })))
                case .metricKey, .drops:
                    break
                default:
                    guard r.isNumbered else { break }
                    let seq = next
                    next += 1
                    lock.withLock {
                        if seq <= received {
                            _resent += 1
                            if let i = held.firstIndex(where: { $0.seq == seq }), held[i].record != r { _mismatches.append(seq) }
                        } else {
                            held.append(Frame(seq: seq, record: r))
                            received = seq
                        }
                    }
                    guard case .metricBatch = r else { break }
                    batches += 1
                    if batches == ackAfterBatches { reply(c, .ack(durableThrough: lock.withLock { received })) }
                    if let cut, batches >= cut { return }
                }
            }
        }
    }
}
