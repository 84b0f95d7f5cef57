#if canImport(Glibc)
    import Glibc
#endif

/// logd's own messages on stderr: one line each, concise, and rate-limited where a client could
/// make them flood (at most one line per key per window, with a count of what was suppressed).
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
    }

    private let lock = ConditionLock()
    private var minimum: Level
    private var windows: [String: (start: Int64, suppressed: Int)] = [:]
    private let windowNanos: Int64 = 10_000_000_000

    public init(level: String) { minimum = Level(name: level) ?? .info }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        write("logd[\(getpid())] \(level.label): \(message())\n")
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
            _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        }
    }
}
