#if canImport(Glibc)
    import Glibc
#endif

/// Where logd listens and writes when nothing says otherwise: shared by the daemon (its config
/// defaults) and the tools that find it (logctl, wire-producer), so they always agree.
public enum DefaultPaths {
    /// `$LOGD_SOCKET`, else `$XDG_RUNTIME_DIR/logd/logd.sock`, else `/tmp/logd-<uid>/logd.sock`.
    public static func socket(_ env: [String: String]) -> String {
        if let s = env["LOGD_SOCKET"], !s.isEmpty { return s }
        if let runtime = env["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/logd/logd.sock" }
        return "/tmp/logd-\(getuid())/logd.sock"
    }

    /// `$LOGD_DATA_ROOT`, else `$XDG_DATA_HOME/logd/runs`, else `~/.local/share/logd/runs`.
    public static func dataRoot(_ env: [String: String]) -> String {
        if let s = env["LOGD_DATA_ROOT"], !s.isEmpty { return s }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/logd/runs" }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return home + "/.local/share/logd/runs"
    }

    /// The process environment as a dictionary.
    public static func environment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }
}
