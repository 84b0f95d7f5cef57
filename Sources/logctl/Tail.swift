import ArgumentParser
import LogdRead
import LogdSystem

#if canImport(Glibc)
    import Glibc
#endif

struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a run's main.log (every segment, oldest first); -f follows it across rotations.",
        discussion: """
            --metrics prints metrics.csv instead (one header line, then the rows of every segment). With -f, \
            logctl keeps the live file open and, when logd rotates it (renames it to the next numbered segment), \
            reads the rest of it and every segment it missed before opening the new live file: each line is \
            printed exactly once. -f ends, exit 0, when the run ends (run.yaml's status is no longer running; \
            the lines written before that are all printed) or on SIGINT or SIGTERM; --forever keeps following \
            an ended run (a late producer may reopen it). A last line without its line end is not printed \
            until it is complete.
            """)

    @OptionGroup var disk: DataRootOptions

    @Argument(help: ArgumentHelp("The run: id, id prefix, folder name, run name or path.", valueName: "run"))
    var runName: String

    @Flag(name: [.customShort("f"), .long], help: "Keep following the run's file as it grows and rotates.")
    var follow = false

    @Flag(help: "With -f: keep following after the run ends (until SIGINT or SIGTERM).")
    var forever = false

    @Flag(help: "Tail metrics.csv instead of main.log.")
    var metrics = false

    @Option(name: [.customShort("n"), .long], help: "Start with only the last N lines (default: all).")
    var lines: Int?

    @Option(help: "With -f: how often to look for new lines, in seconds.")
    var interval = 0.1

    func validate() throws {
        if let lines, lines < 0 { throw ValidationError("--lines must be 0 or more") }
        if !(interval > 0 && interval <= 60) { throw ValidationError("--interval must be > 0 and at most 60 seconds") }
    }

    func run() throws {
        // Signals are taken synchronously (sigtimedwait) so -f ends between two reads, never mid-line.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        if follow { sigprocmask(SIG_BLOCK, &signals, nil) }

        let run = try disk.run(runName)
        let follower = SegmentFollower(
            directory: run.path, stem: metrics ? "metrics" : "main", ext: metrics ? "csv" : "log",
            skipRepeatedHeaders: metrics)
        var first = follower.poll()
        if let lines { first = Self.lastLines(first, lines, keepHeader: metrics) }
        writeOut(first)
        guard follow else { return }
        let nanos = Int((interval * 1e9).rounded())
        var wait = timespec(tv_sec: nanos / 1_000_000_000, tv_nsec: nanos % 1_000_000_000)
        var lastStatusCheck = Posix.monotonicNanos()
        while true {
            let sig = sigtimedwait(&signals, nil, &wait)
            if sig == SIGINT || sig == SIGTERM { break }
            // run.yaml is rewritten after the run's files are synced: once it says the run ended,
            // one more poll prints everything, and -f is done.
            var ended = false
            if !forever, Posix.monotonicNanos() - lastStatusCheck >= 500_000_000 {
                lastStatusCheck = Posix.monotonicNanos()
                ended = RunDirectory.open(run.path).map { $0.phase != .running } ?? false
            }
            let bytes = follower.poll()
            if !bytes.isEmpty { writeOut(bytes) }
            if ended { break }
        }
    }

    /// The last `n` lines of `bytes` (and the CSV header, when `keepHeader`).
    static func lastLines(_ bytes: [UInt8], _ n: Int, keepHeader: Bool) -> [UInt8] {
        var starts: [Int] = [0]
        for (i, b) in bytes.enumerated() where b == 0x0A && i + 1 < bytes.count { starts.append(i + 1) }
        if bytes.isEmpty { return [] }
        let headerEnd = keepHeader ? (starts.count > 1 ? starts[1] : bytes.count) : 0
        let bodyLines = keepHeader ? starts.count - 1 : starts.count
        let from = n >= bodyLines ? (keepHeader ? headerEnd : 0) : starts[starts.count - n]
        return Array(bytes[0..<headerEnd]) + Array(bytes[from...])
    }
}
