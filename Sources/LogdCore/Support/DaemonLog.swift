#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// logd's own messages on stderr: one line each, concise, and rate-limited where a client could
/// make them flood (at most one line per key per window, with a count of what was suppressed).
///
/// Two formats. Where stderr is the journal (systemd sets `JOURNAL_STREAM` to the `<dev>:<ino>`
/// of the stream it connected, and it matches our stderr), each line is `<N>level: message`:
/// journald takes the `<N>` as the syslog priority (`journalctl -p err` filters on it) and adds
/// pid and time itself. Elsewhere (a terminal, a file, a pipe) it is `logd[pid] level: message`.
/// Thread-safe.
public final class DaemonLog: @unchecked Sendable {
    public enum Level: Int, Comparable, Sendable {
        case debug = 0, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        init?(name: String) {
            switch name {
            case "debug": self = .debug
            case "info": self = .info
            case "warning": self = .warning
            case "error": self = .error
            default: return nil
            }
        }
        var label: String { ["debug", "info", "warning", "error"][rawValue] }
        /// syslog(3) priority: LOG_DEBUG 7, LOG_INFO 6, LOG_WARNING 4, LOG_ERR 3.
        var syslogPriority: Int { [7, 6, 4, 3][rawValue] }
    }

    private let lock = ConditionLock()
    private var minimum: Level
    private var windows: [String: (start: Int64, suppressed: Int)] = [:]
    private let windowNanos: Int64 = 10_000_000_000

    /// Where lines go (stderr, or another descriptor in tests).
    private let fd: Int32
    /// Whether `fd` is the journal's stream: priority prefixes, no pid.
    public let journal: Bool

    /// - Parameter journalStream: `$JOURNAL_STREAM` by default.
    public init(level: String, fd: Int32 = 2, journalStream: String? = DaemonLog.environment("JOURNAL_STREAM")) {
        minimum = Level(name: level) ?? .info
        self.fd = fd
        journal = DaemonLog.isJournal(fd: fd, journalStream: journalStream)
    }

    /// Whether `fd` is the stream `journalStream` names: `<dev>:<ino>` in decimal, as systemd
    /// sets `JOURNAL_STREAM` for a service whose stdout or stderr it connects to journald.
    /// A descriptor that was redirected since (`logd 2>file` in a unit's shell) does not match.
    public static func isJournal(fd: Int32, journalStream: String?) -> Bool {
        guard let value = journalStream, let colon = value.firstIndex(of: ":"),
            let dev = UInt64(value[..<colon]), let ino = UInt64(value[value.index(after: colon)...])
        else { return false }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    public static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        let text = message()
        if journal {
            // journald reads one entry per line: each line gets the priority, or a continuation
            // would be logged at the default level.
            var out = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                out += "<\(level.syslogPriority)>\(level.label): \(line)\n"
            }
            write(out)
        } else {
            write("logd[\(getpid())] \(level.label): \(text)\n")
        }
    }

    /// Logs at most once per `key` per 10 s; the next line says how many were suppressed.
    public func limited(_ level: Level, key: String, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        let now = Posix.monotonicNanos()
        var suppressed = 0
        let emit: Bool = lock.withLock {
            if let w = windows[key], now - w.start < windowNanos {
                windows[key] = (w.start, w.suppressed + 1)
                return false
            }
            suppressed = windows[key]?.suppressed ?? 0
            windows[key] = (now, 0)
            if windows.count > 1024 { windows = windows.filter { now - $0.value.start < windowNanos } }
            return true
        }
        guard emit else { return }
        let extra = suppressed > 0 ? " (\(suppressed) similar suppressed)" : ""
        log(level, message() + extra)
    }

    private func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.withLock {
            _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        }
    }
}
