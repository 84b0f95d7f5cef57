#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// Finishes ended runs on a thread of its own, so that a run's end never holds up the writer:
/// the per-key `metrics/` files of a run of millions of rows take tens of milliseconds of CPU
/// and an fsync of as many megabytes, and under load that stalled every flush behind it.
///
/// The writer does the part of a run's end that a flush promises (`Writer.endRun`): the last
/// records, the checkpoint and the snapshots (run.yaml says `finished`) are durable, and the run
/// leaves the writer's tables. A job then does the rest here: the `metrics/` files
/// (MetricFiles), prov.json pointing at them, closing the files, and moving the run's marker to
/// `.logd/finished/`. The run's last acknowledgements are held until the job is done, so a
/// producer's `finish()` still returns with the whole directory in place; a `flush` from anyone
/// else does not wait for derived files. A restart finishes a run whose job a crash cut short
/// (its marker is still active), as it always has.
///
/// Threading: `submit` and `stop` are thread-safe; `finish` runs on the finisher thread (or on
/// the writer's during recovery, before the threads start). A job's run is touched by nobody
/// else until the writer hears it is done (`finished`).
final class RunFinisher: @unchecked Sendable {
    struct Job {
        let run: RunFiles
        /// Acknowledgements held until the run is finished.
        let durable: [(SessionID, UInt64)]
    }

    struct Done {
        let job: Job
        /// The `metrics/` files: rows written and whether they were collected as they arrived,
        /// or why they could not be written (derived data: logged, never fatal).
        var metricFiles: Result<(rows: UInt64, collected: Bool), SystemError> = .success((0, false))
        /// A snapshot or the marker could not be written: the run stays unfinished on disk.
        var error: SystemError?
        /// Each session's last frame, as the finished marker lists them.
        var sessions: [(SessionID, UInt64)] = []
    }

    private let rootfd: Int32
    private let user: String
    private let jobs = JobQueue<Job>()
    private let finished: @Sendable (Done) -> Void
    private var thread: NativeThread?

    init(rootfd: Int32, user: String, finished: @escaping @Sendable (Done) -> Void) {
        self.rootfd = rootfd
        self.user = user
        self.finished = finished
    }

    var isRunning: Bool { thread != nil }

    func start() {
        thread = NativeThread(name: "logd-finisher") { [self] in run() }
    }

    func submit(_ job: Job) { jobs.submit(job) }

    /// Finishes the queued jobs, then joins the thread.
    func stop() {
        jobs.stop()
        thread?.join()
        thread = nil
    }

    private func run() {
        while let job = jobs.next(drain: true) { finished(finish(job)) }
    }

    /// Writes what a finished run derives from its record, then marks it finished.
    func finish(_ job: Job) -> Done {
        FaultPoints.hold("finish-run")
        let run = job.run
        var done = Done(job: job)
        // Per-key metric files for yProv4ML's get_metric (MetricFiles.swift), derived from
        // metrics.csv before prov.json points at them. Not the record: a failure is reported.
        done.metricFiles = Result { () throws(SystemError) in try MetricFiles.write(run) }
        do {
            // The snapshots the writer left (summary.yaml, prov.json, which names the metric files
            // that now exist), then every snapshot fsynced: a finished run's are final.
            run.stale.insert(.prov)
            try run.writeSnapshots(user: user, now: Posix.monotonicNanos(), sync: false)
            try run.syncSnapshotFiles()
            run.closeFiles()
            done.sessions = try RunFinisher.markFinished(run, rootfd: rootfd)
        } catch {
            run.closeFiles()
            done.error = error
        }
        return done
    }

    // MARK: run markers
    //
    // `.logd/active/<hash of directory>` holds "<directory>\n<run id>\n" for every run that is
    // not finished: it is written (fsync'd) before the run's mkdir and moved to
    // `.logd/finished/` when the run ends, so a run id maps to one directory across restarts.

    /// The run ended: its marker moves from active/ to finished/ (one rename, then a directory
    /// fsync). Returns each session's last frame, which the finished marker lists so a producer
    /// that resends after a restart (it missed the final acknowledgement) is told everything is
    /// durable.
    static func markFinished(_ run: RunFiles, rootfd: Int32) throws(SystemError) -> [(SessionID, UInt64)] {
        FaultPoints.hit("before-marker-removal")
        let statefd = try Posix.makeDirectory(rootfd, ".logd", mode: 0o700)
        defer { close(statefd) }
        let activefd = try Posix.makeDirectory(statefd, "active", mode: 0o700)
        defer { close(activefd) }
        let finishedfd = try Posix.makeDirectory(statefd, "finished", mode: 0o700)
        defer { close(finishedfd) }
        let name = RunMarker.name(directory: run.directory)
        var text = run.directory + "\n" + run.runID + "\n"
        var sessions: [(SessionID, UInt64)] = []
        for p in run.producers {
            text += "\(p.info.session) \(p.durableSeq)\n"
            sessions.append((p.info.session, p.durableSeq))
        }
        try Posix.replaceFile(finishedfd, name, Array(text.utf8))
        unlinkat(activefd, name, 0)
        try Posix.fsyncOrThrow(activefd)
        FaultPoints.hit("after-marker-removal")
        return sessions
    }
}
