import Foundation
import LogdCore
import Testing
import LogdRead
import LogdSystem

/// logd's own messages under systemd (issue 19): where stderr is the journal (`JOURNAL_STREAM`
/// names it), each line starts with a `<N>` syslog priority and carries no `logd[pid]`; elsewhere
/// the format is `logd[pid] level: message`.
@Suite("DaemonLog and journald")
struct DaemonLogTests {
    /// A pipe; `JOURNAL_STREAM`'s value for its write end (`<dev>:<ino>`).
    final class LogPipe {
        let read: Int32, write: Int32
        init() {
            var fds: [Int32] = [0, 0]
            precondition(pipe(&fds) == 0)
            (read, write) = (fds[0], fds[1])
        }
        deinit {
            close(read)
            if write >= 0 { close(write) }
        }
        var stream: String {
            var st = stat()
            fstat(write, &st)
            return "\(st.st_dev):\(st.st_ino)"
        }
        /// What was written so far (the writer's end must be closed, or data already there).
        func drain() -> String {
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            var pfd = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
            while poll(&pfd, 1, 0) == 1 {
                let n = Glibc.read(read, &buf, buf.count)
                if n <= 0 { break }
                out += buf[0..<n]
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    @Test("JOURNAL_STREAM naming stderr: <N> priority prefixes per line, no pid; other values: logd[pid]")
    func formats() {
        let p = LogPipe()
        let journal = DaemonLog(level: "debug", fd: p.write, journalStream: p.stream)
        #expect(journal.journal)
        journal.log(.debug, "d")
        journal.log(.info, "i")
        journal.log(.warning, "w")
        journal.log(.error, "two\nlines")
        #expect(p.drain() == "<7>debug: d\n<6>info: i\n<4>warning: w\n<3>error: two\n<3>error: lines\n")

        let pid = getpid()
        for other in [nil, "", "0:0", "garbage", "\(p.stream)9", "12:", ":34"] {
            let plain = DaemonLog(level: "info", fd: p.write, journalStream: other)
            #expect(!plain.journal, "JOURNAL_STREAM=\(other ?? "unset")")
            plain.log(.debug, "below the level")
            plain.log(.warning, "w")
            #expect(p.drain() == "logd[\(pid)] warning: w\n", "JOURNAL_STREAM=\(other ?? "unset")")
        }
        // Another descriptor than the one JOURNAL_STREAM names (stderr redirected elsewhere).
        let q = LogPipe()
        #expect(!DaemonLog(level: "info", fd: q.write, journalStream: p.stream).journal)
    }

    @Test("the logd binary: under the journal its lines carry priorities and no pid; on a plain pipe, logd[pid]")
    func daemonUnderJournal() throws {
        for underJournal in [true, false] {
            let dir = try #require(mkdtemp(strdup("/tmp/logd-journal-XXXXXX")).map { String(cString: $0) })
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let p = LogPipe()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
            process.arguments = ["--socket", dir + "/s.sock", "--data-root", dir + "/runs", "--log-level", "info"]
            var env = ProcessInfo.processInfo.environment
            env["JOURNAL_STREAM"] = underJournal ? p.stream : "1:1"
            process.environment = env
            process.standardError = FileHandle(fileDescriptor: p.write, closeOnDealloc: false)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // Wait for the start-up line, then drain the daemon with SIGTERM.
            var text = ""
            let deadline = Date().addingTimeInterval(30)
            while !text.contains("listening on"), Date() < deadline, process.isRunning {
                var pfd = pollfd(fd: p.read, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 100) == 1 { text += p.drain() }
            }
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            text += p.drain()
            #expect(process.terminationStatus == 0)
            let lines = text.split(separator: "\n")
            #expect(lines.contains { $0.contains("listening on") }, "\(text)")
            #expect(lines.contains { $0.contains("draining") }, "\(text)")
            let prefix = underJournal ? "<6>info: " : "logd[\(process.processIdentifier)] info: "
            for line in lines where line.contains("listening on") || line.contains("draining") {
                #expect(line.hasPrefix(prefix), "JOURNAL_STREAM \(underJournal ? "matches" : "does not match"): \(line)")
            }
            if underJournal {
                #expect(lines.allSatisfy { $0.hasPrefix("<") && !$0.contains("logd[") }, "\(text)")
            }
        }
    }
}
