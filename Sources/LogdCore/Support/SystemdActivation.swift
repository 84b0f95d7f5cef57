#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// systemd socket activation: the listening socket passed as fd 3 (`LISTEN_FDS`, `LISTEN_PID`).
public enum SystemdActivation {
    /// The passed descriptor when systemd (or `systemd-socket-activate`) started us, else nil.
    public static func listenFD() -> Int32? {
        guard let pidText = getenv("LISTEN_PID").map({ String(cString: $0) }), Int32(pidText) == getpid(),
            let countText = getenv("LISTEN_FDS").map({ String(cString: $0) }), let count = Int(countText), count >= 1
        else { return nil }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        return 3
    }
}
