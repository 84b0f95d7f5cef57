// logd-bench: measures what logging costs a training loop and what one daemon sustains, each
// figure beside a floor measured in the same run (docs/PERFORMANCE.md).
//
//   logd-bench [--quick] [--json FILE] [--metrics N] [--producers 1,8,64]
//   logd-bench produce --socket PATH --run-id ID --metrics N      (a producer process)
//
// Build it in release mode (`make bench` or `swift build -c release --product logd-bench`);
// it starts its own logd (the binary beside it) on a socket in a temporary directory.
import CAllocCounter
import Foundation
import LogSDK
import LogdCore
import Wire

#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem
import LogdRead

// MARK: small helpers

func now() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func percentile(_ sorted: [Int64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let i = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
    return Double(sorted[i])
}

struct Distribution {
    var median: Double
    var p99: Double
    var p999: Double
    init(_ samples: [Int64]) {
        let s = samples.sorted()
        median = percentile(s, 0.5)
        p99 = percentile(s, 0.99)
        p999 = percentile(s, 0.999)
    }
}

/// Heap allocations so far in this process (CAllocCounter interposes malloc and friends).
func heapInUse() -> Int { Int(logd_alloc_count()) }

let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()

func fmt(_ v: Double, _ digits: Int = 1) -> String {
    let p = pow(10.0, Double(digits))
    return String((v * p).rounded() / p)
}

// MARK: producer mode

func produce(_ args: [String]) -> Never {
    var socket = "", runID = "bench", metrics = 100_000
    var i = 0
    while i < args.count {
        switch args[i] {
        case "--socket": socket = args[i + 1]
        case "--run-id": runID = args[i + 1]
        case "--metrics": metrics = Int(args[i + 1]) ?? metrics
        default: break
        }
        i += 2
    }
    let run = Run(experiment: "bench", name: "producer", runID: runID, sink: .daemon(socket: socket), bufferBytes: 256 << 20)
    let k = run.key("loss")
    for s in 0..<metrics { run.metric(k, Double(s), step: Int64(s)) }
    let report = run.finish(timeout: 120)
    exit(report.completed && report.dropped == 0 ? 0 : 1)
}

if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "produce" {
    produce(Array(CommandLine.arguments.dropFirst(2)))
}

// MARK: options

var quick = false
var jsonPath: String?
var metricsPerProducer = 200_000
var producerCounts = [1, 8, 64]
/// `--logd-config FILE`: the daemon under test runs with this configuration (e.g. to compare
/// writer_queue_ms or tensorboard settings in one session).
var daemonConfig: String?
/// `--load-only`: only the end-to-end section (throughput, flush under load), no SDK hot path and
/// no idle connections: for comparing daemon settings quickly.
var loadOnly = false
/// `--flush-samples FILE`: every flush under load as "start_ms latency_ms" lines (start since the
/// producers were launched).
var flushSamplesPath: String?
/// `--flush-gap-ms N`: the pause between flushes through the load (0: none through the load).
var flushGapMs = 10
do {
    var args = Array(CommandLine.arguments.dropFirst())
    while !args.isEmpty {
        let a = args.removeFirst()
        switch a {
        case "--quick": quick = true
        case "--json": jsonPath = args.isEmpty ? nil : args.removeFirst()
        case "--metrics": metricsPerProducer = Int(args.removeFirst()) ?? metricsPerProducer
        case "--producers": producerCounts = args.removeFirst().split(separator: ",").compactMap { Int($0) }
        case "--logd-config": daemonConfig = args.isEmpty ? nil : args.removeFirst()
        case "--load-only": loadOnly = true
        case "--flush-gap-ms": flushGapMs = Int(args.removeFirst()) ?? flushGapMs
        case "--flush-samples": flushSamplesPath = args.isEmpty ? nil : args.removeFirst()
        default:
            print(
                "usage: logd-bench [--quick] [--json FILE] [--metrics N] [--producers 1,8,64] [--logd-config FILE] [--load-only] [--flush-samples FILE] [--flush-gap-ms N]"
            )
            exit(2)
        }
    }
    if quick {
        metricsPerProducer = 2_000
        producerCounts = [1, 2]
    }
}

// MARK: the daemon under test

final class Daemon {
    let dir: String
    let socket: String
    let process = Process()
    init(extraArgs: [String] = []) throws {
        var template = Array("/tmp/logd-bench-XXXXXX".utf8CString)
        _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        dir = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        socket = dir + "/logd.sock"
        process.executableURL = binDir.appendingPathComponent("logd")
        process.arguments =
            ["--socket", socket, "--data-root", dir + "/data", "--log-level", "warning"] + (daemonConfig.map { ["--config", $0] } ?? []) + extraArgs
        try process.run()
        for _ in 0..<500 {
            if (try? ControlClient(path: socket)) != nil { return }
            usleep(10_000)
        }
        throw WireSocket.Failure.timedOut
    }
    var pid: Int32 { process.processIdentifier }
    func flush() -> Bool { (try? ControlClient(path: socket).request(.flush, ["timeout_ms": 600_000], timeoutMs: 610_000).status) == .ok }
    /// user+system CPU seconds of the daemon so far (every thread): the process CPU clock, in
    /// nanoseconds (a quick run's CPU is below /proc's 10 ms ticks), else /proc/<pid>/stat.
    func cpuSeconds() -> Double {
        var clock = clockid_t()
        var ts = timespec()
        if clock_getcpuclockid(pid, &clock) == 0, clock_gettime(clock, &ts) == 0 {
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    func peakRSS() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
    func diskBytes() -> Int {
        var total = 0
        if let e = FileManager.default.enumerator(atPath: dir + "/data") {
            for case let f as String in e {
                if let a = try? FileManager.default.attributesOfItem(atPath: dir + "/data/" + f),
                    (a[.type] as? FileAttributeType) == .typeRegular, !f.contains(".logd")
                {
                    total += (a[.size] as? Int) ?? 0
                }
            }
        }
        return total
    }
    func stop() {
        if process.isRunning {
            kill(pid, SIGTERM)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

var results: [(key: String, value: Value)] = []
func record(_ section: String, _ v: Value) { results.append((key: section, value: v)) }
var table: [[String]] = []
func row(_ what: String, _ figure: String, _ floor: String, _ ratio: String, _ target: String) {
    table.append([what, figure, floor, ratio, target])
}

// MARK: 1. SDK hot path

/// The floor: a 32-byte store plus a clock read into a preallocated buffer under a mutex.
func floorSamples(_ n: Int) -> [Int64] {
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    var offset = 0
    var samples = [Int64](repeating: 0, count: n)
    for i in 0..<n {
        let t0 = now()
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        pthread_mutex_lock(mutex)
        if offset + 32 > 1 << 20 { offset = 0 }
        buffer.storeBytes(of: UInt64(i), toByteOffset: offset, as: UInt64.self)
        buffer.storeBytes(of: ts.tv_nsec, toByteOffset: offset + 8, as: Int.self)
        buffer.storeBytes(of: Double(i), toByteOffset: offset + 16, as: Double.self)
        buffer.storeBytes(of: UInt64(7), toByteOffset: offset + 24, as: UInt64.self)
        offset += 32
        pthread_mutex_unlock(mutex)
        samples[i] = now() - t0
    }
    return samples
}

func timingOverhead(_ n: Int) -> [Int64] {
    var s = [Int64](repeating: 0, count: n)
    for i in 0..<n {
        let t0 = now()
        s[i] = now() - t0
    }
    return s
}

func sdkSamples(_ run: Run, _ n: Int) -> (samples: [Int64], allocationsPerCall: Double) {
    let k = run.key("hot")
    for i in 0..<min(n, 100_000) { run.metric(k, Double(i), step: Int64(i)) }  // warm up the chunk pool
    var samples = [Int64](repeating: 0, count: n)
    let heap0 = heapInUse()
    for i in 0..<n {
        let t0 = now()
        run.metric(k, Double(i), step: Int64(i))
        samples[i] = now() - t0
    }
    let heap1 = heapInUse()
    return (samples, Double(heap1 - heap0) / Double(n))
}

let hotN = quick ? 20_000 : 1_000_000
let overhead = Distribution(timingOverhead(hotN))
let floor = Distribution(floorSamples(hotN))
var hot: [(key: String, value: Value)] = []
hot.append((key: "timer_overhead_ns", value: .double(overhead.median)))
hot.append((key: "floor_ns", value: ["median": .double(floor.median), "p99": .double(floor.p99), "p99_9": .double(floor.p999)]))
row("SDK metric() floor (store+clock+mutex)", "\(fmt(floor.median)) ns median", "-", "-", "")
func hotCase(_ label: String, _ run: Run, allowDrops: Bool) {
    let (samples, heap) = sdkSamples(run, hotN)
    let d = Distribution(samples)
    let dropped = run.report.dropped
    hot.append(
        (
            key: label,
            value: [
                "median_ns": .double(d.median), "p99_ns": .double(d.p99), "p99_9_ns": .double(d.p999),
                "allocations_per_call": .double(heap), "dropped": .int(Int64(dropped)),
            ]
        ))
    row(
        "SDK metric(), daemon \(label)", "\(fmt(d.median)) ns med, p99.9 \(fmt(d.p999))",
        "\(fmt(floor.median)) ns", "\(fmt(d.median / max(floor.median, 1), 2))x", "≤ 50 ns med, ≤ 2 µs p99.9")
    _ = allowDrops
}
if !loadOnly {
    do {
        let daemon = try Daemon()
        let running = Run(experiment: "bench", name: "hot", sink: .daemon(socket: daemon.socket), bufferBytes: 256 << 20)
        hotCase("running", running, allowDrops: false)
        running.finish(timeout: 60)
        let absent = Run(experiment: "bench", name: "absent", sink: .daemon(socket: daemon.dir + "/nobody.sock"), bufferBytes: 64 << 20)
        hotCase("absent", absent, allowDrops: true)
        absent.finish(timeout: 0.1)
        let stopped = Run(experiment: "bench", name: "stopped", sink: .daemon(socket: daemon.socket), bufferBytes: 64 << 20)
        stopped.flush(timeout: 10)
        kill(daemon.pid, SIGSTOP)
        hotCase("stopped", stopped, allowDrops: true)
        kill(daemon.pid, SIGCONT)
        stopped.finish(timeout: 60)
        daemon.stop()
    } catch {
        print("logd-bench: cannot start logd: \(error)")
        exit(1)
    }
    record("sdk_hot_path", .map(hot))
}

// MARK: 2. end-to-end throughput, 3. flush, 4. daemon cost, 5. disk

/// The floor: the same bytes through a Unix socket into a reader that discards them.
func socketFloor(bytes total: Int) -> Double {
    var fds: [Int32] = [0, 0]
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    let readEnd = fds[1]
    let reader = Thread {
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while buf.withUnsafeMutableBytes({ read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
    }
    reader.start()
    var chunk = [UInt8](repeating: 1, count: 1 << 16)
    let t0 = now()
    var sent = 0
    while sent < total {
        let n = chunk.withUnsafeMutableBytes { write(fds[0], $0.baseAddress, min($0.count, total - sent)) }
        if n <= 0 { break }
        sent += n
    }
    close(fds[0])
    let elapsed = Double(now() - t0) / 1e9
    usleep(10_000)
    close(fds[1])
    return Double(total) / elapsed
}

/// Flush round trips, one after another; `log` gets each one's start (since `since`) and latency.
func flushLatencies(_ daemon: Daemon, _ n: Int, since: Int64 = 0, log: ((Int64, Int64) -> Void)? = nil) -> Distribution {
    guard let client = try? ControlClient(path: daemon.socket) else { return Distribution([]) }
    var s: [Int64] = []
    for _ in 0..<n {
        let t0 = now()
        _ = try? client.request(.flush, ["timeout_ms": 10_000])
        s.append(now() - t0)
        log?(t0 - since, now() - t0)
    }
    return Distribution(s)
}

/// One flush under load: when it started (since the producers' launch), how long it took, and
/// whether some producers had not yet joined (64 processes starting saturate 2 cores for a
/// few hundred milliseconds: the launch, reported apart from the load itself).
typealias FlushSample = (start: Int64, latency: Int64, starting: Bool)

/// Flushes one after another, `flushGapMs` apart, on a thread of their own until `stop()`.
final class SpreadFlushes: @unchecked Sendable {
    private let lock = NSLock()
    private var stopping = false
    private var samples: [FlushSample] = []
    private let done = DispatchSemaphore(value: 0)
    private var started = false

    func start(_ daemon: Daemon, since t0: Int64, producers: Int) {
        started = true
        let socket = daemon.socket
        Thread { [self] in
            defer { done.signal() }
            let client: ControlClient
            do { client = try ControlClient(path: socket) } catch {
                print("logd-bench: flushes under load: cannot connect: \(error)")
                return
            }
            // From the first record the daemon receives: before it, the producers are starting.
            while !lock.withLock({ stopping }) {
                if case .int(let n)? = (try? client.request(.status))?.body["totals"]?["records"], n > 0 { break }
                usleep(2_000)
            }
            // Starting until every producer has connected once (early runs may end before the
            // last producers start: the launch of 64 processes takes a second on 2 cores).
            var starting = true
            var seen: Set<String> = []
            while !lock.withLock({ stopping }) {
                if starting, case .list(let conns)? = (try? client.request(.status))?.body["connections"] {
                    for c in conns where c["role"] == "producer" {
                        if case .string(let session)? = c["session"] { seen.insert(session) }
                    }
                    starting = seen.count < producers
                }
                let t = now()
                _ = try? client.request(.flush, ["timeout_ms": 60_000], timeoutMs: 61_000)
                let latency = now() - t
                lock.withLock { samples.append((t - t0, latency, starting)) }
                usleep(useconds_t(flushGapMs * 1000))
            }
        }.start()
    }

    func stop() -> [FlushSample] {
        guard started else { return [] }
        lock.withLock { stopping = true }
        done.wait()
        return lock.withLock { samples }
    }
}

var e2e: [Value] = []
for producers in producerCounts {
    guard let daemon = try? Daemon() else { continue }
    let cpu0 = daemon.cpuSeconds()
    let t0 = now()
    var procs: [Process] = []
    for p in 0..<producers {
        let proc = Process()
        proc.executableURL = binDir.appendingPathComponent("logd-bench")
        proc.arguments = ["produce", "--socket", daemon.socket, "--run-id", "run-\(p % 8)", "--metrics", "\(metricsPerProducer)"]
        try? proc.run()
        procs.append(proc)
    }
    var underLoad = Distribution([])
    var whileStarting: [Int64] = []
    // Flush round trips under load: by default one every --flush-gap-ms, from another thread,
    // from the first record the daemon receives until the producers exit (--flush-gap-ms 0: 50
    // back to back from the launch, which mostly fall before the load starts).
    let spread = SpreadFlushes()
    var samples: [FlushSample] = []
    if producers == producerCounts.last {
        if flushGapMs > 0 {
            spread.start(daemon, since: t0, producers: producers)
        } else {
            underLoad = flushLatencies(daemon, quick ? 5 : 50, since: t0) { samples.append(($0, $1, false)) }
        }
    }
    var failed = 0
    for proc in procs {
        proc.waitUntilExit()
        if proc.terminationStatus != 0 { failed += 1 }
    }
    if flushGapMs > 0 {
        samples = spread.stop()
        underLoad = Distribution(samples.filter { !$0.starting }.map(\.latency))
        whileStarting = samples.filter(\.starting).map(\.latency)
    }
    _ = daemon.flush()
    let elapsed = Double(now() - t0) / 1e9
    let records = Double(producers * metricsPerProducer)
    let bytes = records * Double(Metric.frameBytes)
    let rate = records / elapsed
    let cpu = daemon.cpuSeconds() - cpu0
    let floorRate = socketFloor(bytes: Int(bytes)) / Double(Metric.frameBytes)
    let disk = daemon.diskBytes()
    let idle = flushLatencies(daemon, quick ? 10 : 200)
    e2e.append([
        "producers": .int(Int64(producers)), "records": .int(Int64(records)), "seconds": .double(elapsed),
        "records_per_s": .double(rate), "mb_per_s": .double(bytes / elapsed / 1e6),
        "floor_records_per_s": .double(floorRate), "ratio_to_floor": .double(rate / floorRate),
        "daemon_cpu_s_per_million": .double(cpu / records * 1e6), "daemon_peak_rss_bytes": .int(Int64(daemon.peakRSS())),
        "disk_bytes_per_record": .double(Double(disk) / records), "failed_producers": .int(Int64(failed)),
        "flush_idle_ms": ["median": .double(idle.median / 1e6), "p99": .double(idle.p99 / 1e6)],
        "flush_under_load_ms": [
            "median": .double(underLoad.median / 1e6), "p99": .double(underLoad.p99 / 1e6),
            "max": .double(Double(samples.filter { !$0.starting }.map(\.latency).max() ?? 0) / 1e6),
            "count": .int(Int64(samples.count - whileStarting.count)), "gap_ms": .int(Int64(flushGapMs)),
        ],
        "flush_while_producers_start_ms": [
            "median": .double(Distribution(whileStarting).median / 1e6), "max": .double(Double(whileStarting.max() ?? 0) / 1e6),
            "count": .int(Int64(whileStarting.count)),
        ],
    ])
    row(
        "end to end, \(producers) producers", "\(fmt(rate / 1e6, 2)) M rec/s", "\(fmt(floorRate / 1e6, 2)) M rec/s (raw socket)",
        "\(fmt(rate / floorRate, 3))x", producers == 64 ? "≥ 5 M rec/s" : "")
    row(
        "  daemon CPU, peak RSS, disk", "\(fmt(cpu / records * 1e6, 2)) CPU s/M rec", "\(daemon.peakRSS() >> 20) MiB RSS",
        "\(fmt(Double(disk) / records, 1)) B/rec", "")
    row("  flush round trip (idle)", "\(fmt(idle.median / 1e6, 2)) ms med, p99 \(fmt(idle.p99 / 1e6, 2))", "-", "-", "≤ 5 ms")
    if !samples.isEmpty {
        let how = flushGapMs > 0 ? "every \(flushGapMs) ms" : "back to back"
        row(
            "  flush round trip (under load, \(how))", "\(fmt(underLoad.median / 1e6, 2)) ms med, p99 \(fmt(underLoad.p99 / 1e6, 2))",
            "\(samples.count - whileStarting.count) flushes", "-", "≤ 50 ms p99")
        if !whileStarting.isEmpty {
            let d = Distribution(whileStarting)
            row(
                "    … while the producers start", "\(fmt(d.median / 1e6, 2)) ms med, max \(fmt(Double(whileStarting.max() ?? 0) / 1e6, 2))",
                "\(whileStarting.count) flushes", "-", "")
        }
        if let flushSamplesPath {
            let text = samples.map { "\(fmt(Double($0.start) / 1e6, 2)) \(fmt(Double($0.latency) / 1e6, 3)) \($0.starting ? "starting" : "load")\n" }
                .joined()
            try? text.write(toFile: flushSamplesPath, atomically: true, encoding: .utf8)
        }
    }
    daemon.stop()
}
record("end_to_end", .list(e2e))

// 4b. 1,000 idle connections
if !loadOnly, let daemon = try? Daemon() {
    let before = daemon.peakRSS()
    var sockets: [WireSocket] = []
    for _ in 0..<(quick ? 50 : 1000) { if let s = try? WireSocket(path: daemon.socket) { sockets.append(s) } }
    _ = try? ControlClient(path: daemon.socket).request(.status)
    let after = daemon.peakRSS()
    record(
        "idle_connections", ["connections": .int(Int64(sockets.count)), "peak_rss_before": .int(Int64(before)), "peak_rss_after": .int(Int64(after))])
    row("\(sockets.count) idle connections", "\((after - before) >> 10) KiB more RSS", "\(before >> 20) MiB before", "-", "bounded")
    sockets.removeAll()
    daemon.stop()
}

// MARK: report

var machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores"
if let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
    let model = cpu.split(separator: "\n").first(where: { $0.hasPrefix("model name") })
{
    machine = model.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? machine
    machine += ", \(ProcessInfo.processInfo.activeProcessorCount) cores"
}
record("machine", .string(machine))
record("metrics_per_producer", .int(Int64(metricsPerProducer)))
let widths = (0..<5).map { c in ([["measure", "figure", "floor", "ratio", "target"]] + table).map { $0[c].count }.max() ?? 0 }
for (i, r) in ([["measure", "figure", "floor", "ratio", "target"]] + table).enumerated() {
    print(r.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    if i == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
}
print("machine: \(machine)")
let json = Value.map(results).jsonText(pretty: true) + "\n"
if let jsonPath {
    try? json.write(toFile: jsonPath, atomically: true, encoding: .utf8)
    print("wrote \(jsonPath)")
}
