import Foundation
import LogSDK
import Testing
import Wire

/// `Run` promises that every method is thread-safe. These tests call the methods that change
/// the run's own state (`finish`, `lastError`, `isConnected`, `report`) from several threads
/// at once, started together by a barrier. They assert what a caller sees; the data races
/// themselves are caught by the ThreadSanitizer run of this suite (scripts/test.sh:
/// `swift test --sanitize=thread --filter LogSDKTests`).
@Suite("LogSDK thread safety")
struct ThreadSafetyTests {
    @Test("finish from several threads at once: one RUN_END, and every caller gets the same completed report")
    func concurrentFinish() {
        for round in 0..<20 {
            let sink = InMemorySink()
            let run = Run(experiment: "unit", name: "finish-\(round)", sink: .memory(sink))
            let k = run.key("x")
            let reports = Locked<[DeliveryReport]>([])
            let logged = Barrier(8)
            together(8) { i in
                for s in 0..<100 { run.metric(k, Double(s), step: Int64(i * 100 + s)) }
                logged.wait()  // every metric is stored before any RUN_END
                let r = run.finish(timeout: 10)
                reports.with { $0.append(r) }
            }
            let all = reports.value
            #expect(all.count == 8)
            #expect(all.allSatisfy { $0 == all[0] }, "round \(round): \(all)")
            #expect(all[0].completed && all[0].logged == 802 && all[0].acknowledged == 802, "round \(round): \(all[0])")
            let ends = sink.records.filter { if case .runEnd = $0 { true } else { false } }
            #expect(ends.count == 1, "round \(round): \(ends.count) RUN_END records")
        }
    }

    @Test("lastError, report and isConnected read while other threads log, fail and finish")
    func stateUnderContention() {
        let sink = InMemorySink()
        let run = Run(experiment: "unit", name: "hammer", sink: .memory(sink))
        let k = run.key("x")
        let readerErrors = Locked<[String]>([])
        let logged = Barrier(6)
        together(6) { i in
            for n in 0..<300 {
                switch i % 3 {
                case 0:
                    // Writers: each failure sets lastError to a message naming its path.
                    if run.logArtifact(path: "/nonexistent/t\(i)-\(n)", copy: false) {
                        readerErrors.with { $0.append("a missing file was accepted") }
                    }
                case 1:
                    run.metric(k, Double(n), step: Int64(n))
                    let r = run.report
                    if r.acknowledged > r.logged { readerErrors.with { $0.append("report \(r)") } }
                    _ = run.isConnected
                default:
                    // A reader sees no message or a whole one.
                    if let e = run.lastError, !(e.hasPrefix("cannot open /nonexistent/t") && e.hasSuffix("No such file or directory")) {
                        readerErrors.with { $0.append(e) }
                    }
                }
            }
            logged.wait()
            // Half the threads finish while the other half keep reading.
            if i < 3 {
                run.finish(timeout: 10)
            } else {
                for _ in 0..<300 {
                    _ = run.report
                    _ = run.isConnected
                    _ = run.lastError
                }
            }
        }
        #expect(readerErrors.value.isEmpty, "\(readerErrors.value.prefix(5))")
        let final = run.finish(timeout: 10)
        #expect(final.completed && final.undelivered == 0, "\(final)")
        #expect(run.lastError?.hasPrefix("cannot open /nonexistent/t") == true)
    }

    @Test("isConnected follows the connection while other threads read it")
    func connectedAcrossReconnects() throws {
        let dir = try TempDir()
        let path = dir.path + "/s.sock"
        let run = Run(experiment: "unit", name: "reconnect", sink: .daemon(socket: path), bufferBytes: 1 << 20)
        let done = Locked(false)
        let seen = Locked<(up: Int, down: Int)>((0, 0))
        let readers = spawn(4) { _ in
            while !done.value {
                let up = run.isConnected
                seen.with { if up { $0.up += 1 } else { $0.down += 1 } }
                _ = run.report
                _ = run.lastError
            }
        }
        for round in 0..<3 {
            // A listener that accepts one connection; closing both makes the next attempt fail,
            // so "disconnected" lasts until the next round's listener exists.
            let listener = try listenUnix(path)
            let conn = acceptWithin(listener, seconds: 10)
            #expect(conn >= 0, "round \(round): the SDK did not connect")
            #expect(waitUntil(seconds: 10) { run.isConnected }, "round \(round): isConnected stayed false")
            close(conn)
            close(listener)
            unlink(path)
            #expect(waitUntil(seconds: 10) { !run.isConnected }, "round \(round): isConnected stayed true")
        }
        done.with { $0 = true }
        readers.join()
        let counts = seen.value
        #expect(counts.up + counts.down > 0)
        let report = run.finish(timeout: 0.2)
        #expect(!report.completed && report.undelivered > 0, "\(report)")
    }
}

// MARK: helpers

/// A value shared between threads, under a lock.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T {
        lock.lock()
        defer { lock.unlock() }
        return v
    }
    func with(_ body: (inout T) -> Void) {
        lock.lock()
        body(&v)
        lock.unlock()
    }
}

/// A reusable pthread barrier for `count` threads.
final class Barrier: @unchecked Sendable {
    private let b = UnsafeMutablePointer<pthread_barrier_t>.allocate(capacity: 1)
    init(_ count: Int) { pthread_barrier_init(b, nil, UInt32(count)) }
    deinit {
        pthread_barrier_destroy(b)
        b.deallocate()
    }
    func wait() { _ = pthread_barrier_wait(b) }
}

/// Threads started by `spawn`; `join()` waits for all of them.
struct Threads {
    fileprivate var ids: [pthread_t]
    func join() { for t in ids { pthread_join(t, nil) } }
}

/// Starts `count` threads running `body(i)`, released together by a barrier.
func spawn(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> Threads {
    let start = Barrier(count)
    final class Job {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    var ids: [pthread_t] = []
    for i in 0..<count {
        let job = Unmanaged.passRetained(
            Job {
                start.wait()
                body(i)
            })
        var t = pthread_t()
        let rc = pthread_create(
            &t, nil,
            { arg in
                let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
                job.body()
                return nil
            }, job.toOpaque())
        precondition(rc == 0, "pthread_create: \(rc)")
        ids.append(t)
    }
    return Threads(ids: ids)
}

/// Runs `body(i)` on `count` threads started together and waits for them.
func together(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    spawn(count, body).join()
}

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// A temporary directory with a short path (Unix socket paths are limited to 107 bytes).
final class TempDir {
    let path: String
    init() throws {
        var template = Array("/tmp/logd-sdk-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: p)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A listening Unix stream socket bound at `path`.
func listenUnix(_ path: String) throws -> Int32 {
    let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard s >= 0 else { throw POSIXError(.EIO) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0, listen(s, 4) == 0 else {
        close(s)
        throw POSIXError(.EADDRINUSE)
    }
    return s
}

/// Accepts one connection within `seconds`, or returns -1.
func acceptWithin(_ listener: Int32, seconds: Int32) -> Int32 {
    var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
    guard poll(&pfd, 1, seconds * 1000) == 1 else { return -1 }
    return accept(listener, nil, nil)
}
