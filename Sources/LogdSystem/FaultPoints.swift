#if canImport(Glibc)
    import Glibc
#endif

/// Named crash moments and injected write errors, for tests (rsyslog's way): debug builds only.
///
/// - `LOGD_FAULT_POINT=<name>[:<n>]`: logd kills itself with SIGKILL the `n`th time (default 1st)
///   it passes the named step (`hit(_:)` below lists them in docs/OPERATIONS.md), so a restart
///   test can stop it exactly between two steps of the run lifecycle instead of racing a timer.
/// - `LOGD_FAULT_ENOSPC=<path>`: while a file exists at `path`, every write to a run's
///   main.log / metrics.csv and every snapshot or checkpoint replacement fails with ENOSPC, as on
///   a full disk; removing the file is "space returns".
/// - `LOGD_FAULT_HOLD=<name>:<path>`: the thread that passes the named step (`hold(_:)`) waits
///   there while a file exists at `path`, so a test can catch logd part way through a step and
///   look at what the rest of the daemon does meanwhile.
///
/// Release builds compile both to nothing: no environment variable can crash a production logd.
package enum FaultPoints {
    #if DEBUG
        nonisolated(unsafe) private static var armed: (name: String, remaining: Int)? = {
            guard let raw = getenv("LOGD_FAULT_POINT").map({ String(cString: $0) }), !raw.isEmpty else { return nil }
            let parts = raw.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count == 2 ? max(1, Int(parts[1]) ?? 1) : 1)
        }()
        private static let enospcPath: String? = getenv("LOGD_FAULT_ENOSPC").map { String(cString: $0) }
        private static let lock = ConditionLock()
        private static let held: (name: String, path: String)? = {
            guard let raw = getenv("LOGD_FAULT_HOLD").map({ String(cString: $0) }) else { return nil }
            let parts = raw.split(separator: ":", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }()
    #endif

    /// Passes the named step; waits there while the hold file exists when that point is held.
    @inline(__always)
    package static func hold(_ name: StaticString) {
        #if DEBUG
            guard let held, held.name == name.description else { return }
            var st = stat()
            while stat(held.path, &st) == 0 { usleep(5_000) }
        #endif
    }

    /// Passes the named step; kills the process there when that point is armed.
    @inline(__always)
    package static func hit(_ name: StaticString) {
        #if DEBUG
            let fire: Bool = lock.withLock {
                guard var a = armed, a.name == name.description else { return false }
                a.remaining -= 1
                armed = a
                return a.remaining == 0
            }
            if fire {
                let message = "logd: fault point \(name) reached: SIGKILL\n"
                _ = message.withCString { write(2, $0, strlen($0)) }
                kill(getpid(), SIGKILL)
            }
        #endif
    }

    /// The injected error for a write to `what` (a file stem or snapshot name), if any.
    @inline(__always)
    package static func writeError(_ what: String) -> SystemError? {
        #if DEBUG
            guard let path = enospcPath else { return nil }
            var st = stat()
            return stat(path, &st) == 0 ? SystemError("write", errno: ENOSPC, path: what) : nil
        #else
            return nil
        #endif
    }
}
