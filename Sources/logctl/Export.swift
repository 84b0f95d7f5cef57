import ArgumentParser
import LogdRead
import LogdSystem
import TensorBoardEvents
import Wire

#if canImport(Glibc)
    import Glibc
#endif

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write runs already on disk in another tool's format (tensorboard).",
        subcommands: [ExportTensorBoard.self])
}

struct ExportTensorBoard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensorboard",
        abstract: "Write TensorBoard event files for runs on disk (from metrics.csv, main.log, config.yaml).",
        discussion: """
            For a run, or every run of an experiment, writes one file events.out.tfevents.<start>.<host>.logd-export \
            with the same events logd writes live (docs/ON_DISK_FORMAT.md, "TensorBoard event files"): every \
            metrics.csv row as a scalar (tag context/key[/source][/rank<R>], its step, or its row number when it has \
            none; the value as float32, as TensorBoard holds scalars; its time), every main.log line as text (tag logs/main.log), config.yaml as hparams \
            with the run's status, and what a SummaryWriter stored under artifacts/ (images/<tag>/<step>.png as \
            images, histograms/<tag>/<step>.json as histograms, text/<tag>/<step>.md as text). Without --out the \
            file goes into the run directory, so `tensorboard --logdir <data root>` shows the run; a run that \
            already has event files (logd wrote them live, or an earlier export) is skipped and said so (exit 0; \
            --force replaces an earlier export, never logd's files). With --out DIR: DIR/<experiment>/<run>/. The file \
            is written under a temporary name and renamed, so TensorBoard never reads half of it. A progress bar \
            on stderr while a run exports when stderr is a terminal; one line per run either way.
            """)

    @OptionGroup var disk: DataRootOptions

    @Argument(help: ArgumentHelp("A run (id, id prefix, folder, name or path) or an experiment.", valueName: "run-or-experiment"))
    var target: String

    @Option(help: "Write under this directory (<out>/<experiment>/<run>/) instead of into the run directories.")
    var out: String?

    @Flag(help: "Replace an earlier export's file (never the event files logd wrote live).")
    var force = false

    func run() throws {
        var runs = RunCatalog.experiment(target, root: disk.path)
        if runs.isEmpty { runs = [try disk.run(target)] }
        let progress = isatty(2) == 1
        var failed = 0
        var exported = 0
        var skipped = 0
        for run in runs {
            let dir = out.map { FS.absolute($0) + "/" + run.relative } ?? run.path
            do {
                let written = try TensorBoardExporter(run: run, directory: dir, force: force, progress: progress).export()
                writeOut(written.path + "\n")
                FileOutput.stderr("logctl: \(run.relative): \(written.summary)\n")
                exported += 1
            } catch let error as ExportError where error.skipped {
                FileOutput.stderr("logctl: \(run.relative): \(error); skipped\n")
                skipped += 1
            } catch {
                FileOutput.stderr("logctl: \(run.relative): \(error)\n")
                failed += 1
            }
        }
        FileOutput.stderr(
            "logctl: exported \(exported) run\(exported == 1 ? "" : "s")" + (skipped > 0 ? ", \(skipped) skipped" : "")
                + (failed > 0 ? ", \(failed) failed" : "") + "\n")
        if failed > 0 { throw ExitCode(LogctlExit.failed) }
    }
}

struct ExportError: Error, CustomStringConvertible {
    var description: String
    /// Nothing to do (the run already has event files): reported, not a failure.
    var skipped = false
}

/// One run's export: metrics.csv, main.log, config.yaml and the SummaryWriter's artifacts to one
/// event file, encoded as the daemon encodes them (TensorBoardEvents).
struct TensorBoardExporter {
    let run: RunDirectory
    let directory: String
    let force: Bool
    let progress: Bool

    struct Written {
        var path: String
        var summary: String
    }

    static let suffix = "logd-export"

    func export() throws -> Written {
        try makeDirectories(directory)
        let start = run.startNanos ?? 0
        let host: String = {
            if case .string(let h)? = run.info["host"] { return h }
            return "localhost"
        }()
        let prefix = TensorBoardFileName.prefix(startSeconds: start / 1_000_000_000, host: host)
        let name = String(prefix.dropLast("logd.".count)) + TensorBoardExporter.suffix
        // TensorBoard reads every file whose name holds "tfevents".
        let existing = FS.list(directory).filter { n in
            let b = Array(n.utf8), t = Array("tfevents".utf8)
            return b.count >= t.count && (0...(b.count - t.count)).contains { b[$0..<($0 + t.count)].elementsEqual(t) }
        }
        let others = existing.filter { $0 != name }
        if !others.isEmpty {
            throw ExportError(
                description:
                    "already has TensorBoard event files (\(others.prefix(3).joined(separator: ", "))): nothing written "
                    + "(--out DIR exports elsewhere)", skipped: true)
        }
        if existing.contains(name), !force {
            throw ExportError(description: "already exported (\(name)): nothing written (--force replaces it)", skipped: true)
        }
        let temp = directory + "/.logd-export.tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0 { throw ExportError(description: "cannot create \(temp): \(String(cString: strerror(errno)))") }
        var sink = Sink(fd: fd)
        var counts = (scalars: 0, lines: 0, images: 0, histograms: 0, texts: 0)
        do {
            let startWall = Double(start) / 1e9
            sink.record(TensorBoardEvent.fileVersionEvent(wallTime: startWall))
            if let config = run.config() {
                sink.record(
                    TensorBoardEvent.sessionStart(
                        hparams: TensorBoardEvent.hparams(fromConfig: config), groupName: "", startTime: startWall,
                        wallTime: startWall))
            }
            counts.scalars = try scalars(&sink)
            counts.lines = try logLines(&sink)
            (counts.images, counts.histograms, counts.texts) = try artifacts(&sink)
            if let status = run.phase, status != .running {
                let end = Double(run.endNanos ?? start) / 1e9
                sink.record(TensorBoardEvent.sessionEnd(status: status == .finished ? .success : .failure, endTime: end, wallTime: end))
            }
            try sink.flush()
            if fsync(fd) != 0 { throw ExportError(description: "fsync \(temp): \(String(cString: strerror(errno)))") }
            close(fd)
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        let path = directory + "/" + name
        if rename(temp, path) != 0 {
            unlink(temp)
            throw ExportError(description: "rename to \(path): \(String(cString: strerror(errno)))")
        }
        let summary =
            "\(counts.scalars) scalars, \(counts.lines) log lines, \(counts.images) images, \(counts.histograms) histograms, \(counts.texts) texts"
        return Written(path: path, summary: summary)
    }

    /// The records gathered and written in large writes.
    struct Sink {
        let fd: Int32
        let buffer = EventBuffer(capacity: 1 << 20)
        var error: String?

        init(fd: Int32) { self.fd = fd }

        mutating func record(_ payload: [UInt8]) {
            buffer.appendRecord(payload)
            if buffer.count >= 1 << 20 { try? flush() }
        }

        mutating func flush() throws {
            if let error { throw ExportError(description: error) }
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.base + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    error = "write: \(String(cString: strerror(errno)))"
                    throw ExportError(description: error!)
                }
                offset += n
            }
            buffer.removeAll()
        }
    }

    // MARK: scalars

    private func scalars(_ sink: inout Sink) throws -> Int {
        let segments = run.segments(stem: "metrics", ext: "csv")
        let total = segments.reduce(0) { $0 + Int(FS.statInfo($1)?.st_size ?? 0) }
        var bar = ProgressBar(label: run.relative, total: total, enabled: progress)
        var done = 0
        var row: Int64 = 0
        var tags: [[UInt8]: ScalarTag] = [:]
        defer { for t in tags.values { t.deallocate() } }
        for path in segments {
            guard let bytes = FS.read(path) else { throw ExportError(description: "cannot read \(path)") }
            var columns: [String: Int] = [:]
            var header = true
            var failure: String?
            var consumed = 0  // about the bytes read so far (fields and separators), for the bar
            MetricsCSV.forEachRecord(bytes) { fields in
                if header {
                    header = false
                    if fields.first.map({ String(decoding: $0, as: UTF8.self) }) == "time" {
                        for (i, f) in fields.enumerated() { columns[String(decoding: f, as: UTF8.self)] = i }
                        return
                    }
                }
                let t = columns["time"] ?? 0, s = columns["step"] ?? 1, c = columns["context"] ?? 2, k = columns["key"] ?? 3
                let v = columns["value"] ?? 4, r = columns["rank"] ?? 5, src = columns["source"] ?? 6
                guard fields.count > max(t, s, c, k, v), let value = MetricsCSV.double(fields[v]) else {
                    if failure == nil { failure = "\(path): a row that is not a metric (\(fields.count) fields)" }
                    return
                }
                let rank = r < fields.count ? fields[r] : Array("0".utf8)
                let source = src < fields.count ? fields[src] : []
                // The tag's key: the four fields, each with its length (no separator can collide).
                var id: [UInt8] = []
                for f in [fields[c], fields[k], source, rank] { id += withUnsafeBytes(of: UInt32(f.count)) { Array($0) } + f }
                if tags[id] == nil {
                    let tag = TensorBoardTags.scalar(
                        context: String(decoding: fields[c], as: UTF8.self), key: String(decoding: fields[k], as: UTF8.self),
                        source: String(decoding: source, as: UTF8.self), rank: Int64(String(decoding: rank, as: UTF8.self)) ?? 0)
                    tags[id] = ScalarTag(tag: tag)
                }
                let step = fields[s].isEmpty ? row : Int64(String(decoding: fields[s], as: UTF8.self)) ?? row
                let wall = Double(ISOTime.parse(String(decoding: fields[t], as: UTF8.self)) ?? 0) / 1e9
                tags[id]!.append(to: sink.buffer, wallTime: wall, step: step, value: value)
                if sink.buffer.count >= 1 << 20 { try? sink.flush() }
                row += 1
                consumed += fields.reduce(fields.count) { $0 + $1.count }
                if row % 4096 == 0 { bar.update(done + consumed) }
            }
            if let failure { throw ExportError(description: failure) }
            done += bytes.count
            bar.update(done)
        }
        bar.finish()
        return Int(row)
    }

    // MARK: main.log

    private func logLines(_ sink: inout Sink) throws -> Int {
        var n: Int64 = 0
        var current: (wall: Double, text: String)?
        func emit(_ sink: inout Sink) {
            guard let c = current else { return }
            sink.record(
                TensorBoardEvent.text(
                    tag: TensorBoardTags.log, markdown: TensorBoardEvent.preformatted(c.text), wallTime: c.wall, step: n))
            n += 1
            current = nil
        }
        for path in run.segments(stem: "main", ext: "log") {
            guard let bytes = FS.read(path) else { throw ExportError(description: "cannot read \(path)") }
            var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            // A last line without its line end is incomplete (a live run): left out.
            lines.removeLast()
            for line in lines {
                if line.hasPrefix("    "), current != nil {
                    current!.text += "\n" + line.dropFirst(4)
                    continue
                }
                emit(&sink)
                guard let space = line.firstIndex(of: " "), let t = ISOTime.parse(String(line[..<space])) else { continue }
                current = (Double(t) / 1e9, String(line[line.index(after: space)...]))
            }
        }
        emit(&sink)
        return Int(n)
    }

    // MARK: artifacts a SummaryWriter stored

    /// `artifacts/<kind>/<tag>/<step>.<ext>` files: (tag, step, path), by tag then step.
    private func stored(_ kind: String, ext: String) -> [(tag: String, step: Int64, path: String)] {
        var out: [(tag: String, step: Int64, path: String)] = []
        func walk(_ dir: String, _ tag: String, depth: Int) {
            guard depth < 16 else { return }
            for name in FS.list(dir) where !name.hasPrefix(".") {
                let path = dir + "/" + name
                if FS.isDirectory(path), FS.lstatInfo(path).map({ $0.st_mode & S_IFMT == S_IFDIR }) == true {
                    walk(path, tag.isEmpty ? name : tag + "/" + name, depth: depth + 1)
                } else if name.hasSuffix("." + ext), !tag.isEmpty, let step = Int64(name.dropLast(ext.count + 1)) {
                    out.append((tag, step, path))
                }
            }
        }
        walk(run.file("artifacts/" + kind), "", depth: 0)
        return out.sorted { ($0.tag, $0.step) < ($1.tag, $1.step) }
    }

    private func mtime(_ path: String) -> Double {
        guard let st = FS.statInfo(path) else { return 0 }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    private func artifacts(_ sink: inout Sink) throws -> (Int, Int, Int) {
        var images = 0, histograms = 0, texts = 0
        for (tag, step, path) in stored("images", ext: "png") {
            guard let png = FS.read(path), let event = TensorBoardEvent.image(tag: tag, png: png, wallTime: mtime(path), step: step)
            else { continue }
            sink.record(event)
            images += 1
        }
        for (tag, step, path) in stored("histograms", ext: "json") {
            guard let bytes = FS.read(path), let doc = try? YAMLReader.load(bytes: bytes) else { continue }
            func number(_ k: String) -> Double? {
                switch doc[k] {
                case .int(let i)?: return Double(i)
                case .double(let d)?: return d
                case .string(let s)?: return Double(s)
                default: return nil
                }
            }
            func numbers(_ k: String) -> [Double] {
                guard case .list(let l)? = doc[k] else { return [] }
                return l.compactMap {
                    switch $0 {
                    case .int(let i): Double(i)
                    case .double(let d): d
                    case .string(let s): Double(s)
                    default: nil
                    }
                }
            }
            let limits = numbers("bucket_limits"), counts = numbers("bucket_counts")
            guard let lo = number("min"), let hi = number("max"), !limits.isEmpty, limits.count == counts.count else { continue }
            sink.record(
                TensorBoardEvent.histogram(
                    tag: tag, min: lo, max: hi, num: number("num") ?? counts.reduce(0, +), sum: number("sum") ?? 0,
                    sumSquares: number("sum_squares") ?? 0, limits: limits, counts: counts, wallTime: mtime(path), step: step))
            histograms += 1
        }
        for (tag, step, path) in stored("text", ext: "md") {
            guard let bytes = FS.read(path) else { continue }
            sink.record(TensorBoardEvent.text(tag: tag, markdown: String(decoding: bytes, as: UTF8.self), wallTime: mtime(path), step: step))
            texts += 1
        }
        return (images, histograms, texts)
    }

    private func makeDirectories(_ path: String) throws {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o777) != 0, errno != EEXIST {
                throw ExportError(description: "cannot create \(built): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// `\r<label> [#####-----]  45%` on stderr while a run exports, only when stderr is a terminal;
/// redrawn at most once per percent.
struct ProgressBar {
    let label: String
    let total: Int
    let enabled: Bool
    private var shown = -1

    init(label: String, total: Int, enabled: Bool) {
        self.label = label
        self.total = total
        self.enabled = enabled && total > 1 << 20  // small runs finish before a bar is worth drawing
    }

    mutating func update(_ done: Int) {
        guard enabled else { return }
        let percent = min(100, done * 100 / max(total, 1))
        guard percent != shown else { return }
        shown = percent
        let width = 30, filled = percent * width / 100
        FileOutput.stderr(
            "\r\(label) [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] \(percent)%")
    }

    func finish() {
        if enabled, shown >= 0 { FileOutput.stderr("\r\u{1B}[K") }
    }
}
