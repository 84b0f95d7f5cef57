import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

/// Starts the real `logd` binary on a socket in a fresh temporary directory, and cleans up:
/// every process it starts is stopped, and the directory is removed, in `shutdown()`.
final class DaemonHarness {
    static let buildDirectory: URL = {
        // The test binary sits beside the package's executables (.build/<triple>/debug/).
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("logd").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    static func tool(_ name: String) -> String { buildDirectory.appendingPathComponent(name).path }

    let root: String
    var socket: String { root + "/sock/logd.sock" }
    var dataRoot: String { root + "/data" }
    private(set) var daemon: Process?
    private(set) var stderrPath: String
    private var children: [Process] = []
    var extraArguments: [String] = []
    /// Extra environment for the daemon (fault points: LOGD_FAULT_POINT, LOGD_FAULT_ENOSPC).
    var environment: [String: String] = [:]

    init() throws {
        var template = Array("/tmp/logd-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw HarnessError("mkdtemp failed") }
        root = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        stderrPath = root + "/logd.stderr"
    }

    struct HarnessError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Starts logd and waits until its socket accepts connections.
    func start(_ arguments: [String] = []) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.tool("logd"))
        p.arguments = ["--socket", socket, "--data-root", dataRoot, "--log-level", "warning"] + extraArguments + arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        daemon = p
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if (try? ControlClient(path: socket)) != nil { return }
            if !p.isRunning { throw HarnessError("logd exited with \(p.terminationStatus): \(daemonStderr())") }
            usleep(20_000)
        }
        throw HarnessError("logd did not start listening on \(socket)")
    }

    /// Waits for the daemon to exit by itself (a fault point); true if it did within `timeout`.
    func waitForExit(timeout: TimeInterval = 60) -> Bool {
        guard let p = daemon else { return true }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        daemon = nil
        return true
    }

    func daemonStderr() -> String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// SIGTERM (a drain), then waits; returns the exit status.
    @discardableResult
    func stop(signal sig: Int32 = SIGTERM) -> Int32 {
        guard let p = daemon else { return 0 }
        if p.isRunning { kill(p.processIdentifier, sig) }
        p.waitUntilExit()
        daemon = nil
        return p.terminationStatus
    }

    /// Starts a raw Wire producer (wire-producer) with these options.
    func producer(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.tool("wire-producer"))
        p.arguments = ["--socket", socket] + arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        children.append(p)
        return p
    }

    func control() throws -> ControlClient { try ControlClient(path: socket) }

    func status() throws -> Value {
        let reply = try control().request(.status)
        #expect(reply.status == .ok)
        return reply.body
    }

    func flush() throws {
        let reply = try control().request(.flush, ["timeout_ms": 30_000])
        #expect(reply.status == .ok, "flush: \(reply.body.jsonText())")
    }

    /// Peak resident memory of the daemon (VmHWM) in bytes.
    func daemonPeakRSS() -> Int {
        guard let pid = daemon?.processIdentifier,
            let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }

    /// Run directories under the data root: `experiment/stamp_name`.
    func runDirectories() -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for exp in (try? fm.contentsOfDirectory(atPath: dataRoot)) ?? [] where !exp.hasPrefix(".") {
            for run in (try? fm.contentsOfDirectory(atPath: dataRoot + "/" + exp)) ?? [] {
                out.append(exp + "/" + run)
            }
        }
        return out.sorted()
    }

    func read(_ relative: String) -> String {
        (try? String(contentsOfFile: dataRoot + "/" + relative, encoding: .utf8)) ?? ""
    }

    /// Every segment of a rotating file, oldest first, then the live one.
    func segments(_ runDir: String, stem: String, ext: String) -> [String] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dataRoot + "/" + runDir)) ?? [])
            .filter { $0.hasPrefix(stem + ".") && $0.hasSuffix("." + ext) && $0 != "\(stem).\(ext)" }
            .sorted()
        return (files + ["\(stem).\(ext)"]).map { read(runDir + "/" + $0) }
    }

    func shutdown() {
        for c in children where c.isRunning {
            kill(c.processIdentifier, SIGKILL)
            c.waitUntilExit()
        }
        stop(signal: SIGKILL)
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { shutdown() }
}

func waitAll(_ processes: [Process], timeout: TimeInterval = 120) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    for p in processes {
        while p.isRunning {
            if Date() > deadline { return false }
            usleep(10_000)
        }
    }
    return true
}

/// Parses metrics.csv rows (header excluded): (step, key, value, rank).
func metricRows(_ csv: String) -> [(step: Int, key: String, value: Double, rank: Int)] {
    var rows: [(Int, String, Double, Int)] = []
    for line in csv.split(separator: "\n").dropFirst() {
        let f = line.split(separator: ",", omittingEmptySubsequences: false)
        guard f.count == 7, let step = Int(f[1]), let value = Double(f[4]), let rank = Int(f[5]) else { continue }
        rows.append((step, String(f[3]), value, rank))
    }
    return rows
}
