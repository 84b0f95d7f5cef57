#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// One run directory on disk, `<data root>/<experiment>/<YYYY-MM-DD_HH-MM-SS>_<name>[_N]/`,
/// as tools read it: from the files alone, no daemon needed (docs/ON_DISK_FORMAT.md).
public struct RunDirectory: Sendable {
    /// Absolute path of the directory.
    public let path: String
    /// Its parent's name (the sanitized experiment) and its own name.
    public let experimentFolder: String
    public let folder: String
    /// run.yaml, loaded (`.map([])` when it could not be read or parsed; `loadError` says why).
    public let info: Value
    public let loadError: String?

    /// `<experiment folder>/<folder>`: the path relative to the data root.
    public var relative: String { experimentFolder + "/" + folder }

    public var runID: String { string("run_id") ?? "" }
    /// The unsanitized experiment from run.yaml, else the folder's name.
    public var experiment: String { string("experiment") ?? experimentFolder }
    public var name: String { string("name") ?? folder }
    /// `running`, `finished`, `failed`, `killed`, `crashed`, or `unknown` without a run.yaml.
    public var status: String { string("status") ?? "unknown" }
    /// `status` as logd's enum; nil for `unknown` or a value logd does not write.
    public var phase: RunPhase? { RunPhase(rawValue: status) }
    public var startTime: String? { string("start_time") }
    public var endTime: String? { string("end_time") }
    public var startNanos: Int64? { startTime.flatMap(ISOTime.parse) }
    public var endNanos: Int64? { endTime.flatMap(ISOTime.parse) }

    /// Seconds from start to end (to now while it runs), nil without a start time.
    public func durationSeconds(now: Int64 = ISOTime.now()) -> Double? {
        guard let start = startNanos else { return nil }
        let end = endNanos ?? (phase == .running ? now : nil)
        guard let end else { return nil }
        return Double(end - start) / 1e9
    }

    func string(_ key: String) -> String? {
        if case .string(let s)? = info[key] { return s }
        return nil
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// The parsed contents of a YAML file of the run (config.yaml, summary.yaml), nil if absent
    /// or unreadable.
    public func yaml(_ name: String) -> Value? {
        guard let bytes = FS.read(file(name)) else { return nil }
        return try? YAMLReader.load(bytes: bytes)
    }

    /// config.yaml (the run's params), nil when the run has none on disk.
    public func config() -> Value? { yaml("config.yaml") }

    /// Paths of a rotating file's segments, oldest first: `<stem>.NNNNNN.<ext>` by number, then
    /// the live `<stem>.<ext>` (when it exists).
    public func segments(stem: String, ext: String) -> [String] {
        RunDirectory.segments(in: path, stem: stem, ext: ext).map { $0.path }
            + (FS.isFile(file("\(stem).\(ext)")) ? [file("\(stem).\(ext)")] : [])
    }

    /// Numbered (rotated) segments of `<stem>.<ext>` in `dir`, by number.
    public static func segments(in dir: String, stem: String, ext: String) -> [(number: UInt64, path: String)] {
        var out: [(number: UInt64, path: String)] = []
        let prefix = stem + ".", suffix = "." + ext
        for name in FS.list(dir) where name.hasPrefix(prefix) && name.hasSuffix(suffix) {
            let middle = name.utf8.dropFirst(prefix.utf8.count).dropLast(suffix.utf8.count)
            guard !middle.isEmpty, middle.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let n = UInt64(String(decoding: middle, as: UTF8.self))
            else { continue }
            out.append((number: n, path: dir + "/" + name))
        }
        return out.sorted { $0.number < $1.number }
    }

    /// Opens the run at `path` (a directory holding run.yaml); nil if it is not one.
    public static func open(_ path: String) -> RunDirectory? {
        let dir = FS.absolute(path)
        guard FS.isDirectory(dir), FS.isFile(dir + "/run.yaml") else { return nil }
        let parts = dir.split(separator: "/")
        let folder = parts.last.map(String.init) ?? dir
        let experiment = parts.count >= 2 ? String(parts[parts.count - 2]) : ""
        var info: Value = .map([])
        var loadError: String?
        if let bytes = FS.read(dir + "/run.yaml") {
            do {
                let v = try YAMLReader.load(bytes: bytes)
                if case .map = v { info = v } else { loadError = "run.yaml is not a mapping" }
            } catch {
                loadError = "run.yaml: \(error)"
            }
        } else {
            loadError = "run.yaml: cannot be read"
        }
        return RunDirectory(path: dir, experimentFolder: experiment, folder: folder, info: info, loadError: loadError)
    }
}

/// Finding runs under a data root.
public enum RunCatalog {
    /// Every run under `root` (`<root>/<experiment>/<run>/run.yaml`; hidden names such as `.logd`
    /// and symlinks are skipped), oldest start first.
    public static func scan(root: String) -> [RunDirectory] {
        var runs: [RunDirectory] = []
        let base = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        for experiment in FS.list(base) where !experiment.hasPrefix(".") && FS.isDirectory(base + "/" + experiment) {
            for folder in FS.list(base + "/" + experiment) where !folder.hasPrefix(".") {
                if let run = RunDirectory.open(base + "/" + experiment + "/" + folder) { runs.append(run) }
            }
        }
        return sorted(runs)
    }

    /// Oldest start first; runs without a start time by directory.
    public static func sorted(_ runs: [RunDirectory]) -> [RunDirectory] {
        runs.sorted { a, b in
            let x = a.startNanos ?? .max, y = b.startNanos ?? .max
            return x != y ? x < y : a.relative < b.relative
        }
    }

    /// Runs of an experiment: named by run.yaml's `experiment` or by the experiment folder.
    public static func experiment(_ name: String, root: String) -> [RunDirectory] {
        scan(root: root).filter { $0.experiment == name || $0.experimentFolder == name }
    }

    public enum LookupError: Error, CustomStringConvertible, Sendable {
        case notFound(name: String, root: String)
        case ambiguous(name: String, matches: [String])

        /// One line.
        public var description: String {
            switch self {
            case .notFound(let name, let root):
                "run not found: \(name) (no run id, id prefix or folder matches under \(root))"
            case .ambiguous(let name, let matches):
                "run '\(name)' is ambiguous: \(matches.count) runs match (\(matches.prefix(5).joined(separator: ", "))\(matches.count > 5 ? ", …" : ""))"
            }
        }
    }

    /// The run a person named: a run directory path (absolute, relative to the data root, or
    /// relative to the current directory), an exact run id, a folder's last component
    /// (`2026-11-22_23-40-01_baseline`), the run's name (`baseline`, or `experiment/name`), or a
    /// prefix of exactly one run id — tried in that order. Several runs of one name: ambiguous.
    public static func find(_ name: String, root: String) throws(LookupError) -> RunDirectory {
        guard !name.isEmpty else { throw .notFound(name: name, root: root) }
        if name.hasPrefix("/") {
            if let run = RunDirectory.open(name) { return run }
            throw .notFound(name: name, root: root)
        }
        if name.contains("/") || name == "." || name == ".." {
            if let run = RunDirectory.open(root + "/" + name) { return run }
            if let run = RunDirectory.open(name) { return run }
        }
        let all = scan(root: root)
        func pick(_ matches: [RunDirectory]) throws(LookupError) -> RunDirectory? {
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 {
                throw .ambiguous(name: name, matches: matches.map { "\($0.runID) in \($0.relative)" })
            }
            return nil
        }
        if let run = try pick(all.filter { $0.runID == name }) { return run }
        if let run = try pick(all.filter { $0.folder == name }) { return run }
        if let run = try pick(all.filter { $0.name == name || $0.experiment + "/" + $0.name == name }) { return run }
        if let run = try pick(all.filter { $0.runID.hasPrefix(name) }) { return run }
        throw .notFound(name: name, root: root)
    }
}

/// ISO-8601 UTC times as logd writes them (`2026-11-22T22:40:01.123Z`) and their display.
public enum ISOTime {
    /// Nanoseconds since the epoch, or nil if the text is not `YYYY-MM-DDTHH:MM:SS[.fff…]Z`
    /// (a `+00:00` suffix is accepted too).
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x20, b[13] == 0x3A, b[16] == 0x3A
        else {
            return nil
        }
        func num(_ from: Int, _ count: Int) -> Int32? {
            var v: Int32 = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int32(b[i] - 0x30)
            }
            return v
        }
        guard let year = num(0, 4), let month = num(5, 2), let day = num(8, 2), let hour = num(11, 2),
            let minute = num(14, 2),
            let second = num(17, 2)
        else { return nil }
        var nanos: Int64 = 0
        var i = 19
        if i < b.count, b[i] == 0x2E {
            i += 1
            var scale: Int64 = 100_000_000
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                nanos += Int64(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
        }
        let rest = String(decoding: b[i...], as: UTF8.self)
        guard rest == "Z" || rest == "+00:00" || rest.isEmpty else { return nil }
        var tm = tm()
        tm.tm_year = year - 1900
        tm.tm_mon = month - 1
        tm.tm_mday = day
        tm.tm_hour = hour
        tm.tm_min = minute
        tm.tm_sec = second
        let seconds = timegm(&tm)
        return Int64(seconds) * 1_000_000_000 + nanos
    }

    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// `YYYY-MM-DD HH:MM:SS` in the local time zone (like the run directories' stamps).
    public static func localText(_ nanos: Int64) -> String {
        var t = time_t(nanos / 1_000_000_000)
        var tm = tm()
        localtime_r(&t, &tm)
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2)) "
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))"
    }
}
