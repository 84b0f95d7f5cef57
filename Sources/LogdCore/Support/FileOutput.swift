#if canImport(Glibc)
    import Glibc
#endif

/// Unbuffered writes to the standard streams (safe from any thread).
public enum FileOutput {
    public static func stderr(_ text: String) { write(2, text) }
    public static func stdout(_ text: String) { write(1, text) }

    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { try? Posix.writeAll(fd, UnsafeRawBufferPointer($0)) }
    }
}

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
