#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// One run's directory and open files. Writer-confined: only the writer thread touches it.
///
/// Files: `main.log` and `metrics.csv` (rotating), `run.yaml` (identity and lifecycle, replaced
/// atomically), and `.logd-checkpoint`: the state a restart resumes from (file lengths and each
/// session's last frame number at the last durability point, all replaced atomically together).
final class RunFiles {
    static let checkpointName = ".logd-checkpoint"
    /// The checkpoint nests client trees a few levels deeper than the wire allows and can hold
    /// many records, so it is written and read with wider limits than client frames.
    static let checkpointLimits = WireLimits(
        maxFrameBytes: 1 << 30, maxTextBytes: 64 << 20, maxDepth: 256, maxCollectionCount: 1 << 26)
    static let metricsHeader = Array("time,step,context,key,value,rank,source\n".utf8)

    struct Producer {
        var info: ProducerInfo
        var status = RunPhase.running
        var dropped: UInt64 = 0
        var durableSeq: UInt64 = 0
        var receivedSeq: UInt64 = 0
    }

    let index: Int32
    let runID: String
    /// Path relative to the data root: `<experiment>/<stamp>_<name>`.
    let directory: String
    let dirfd: Int32
    let identity: RunStart
    var producers: [Producer] = []
    var status = RunPhase.running
    var endTime: Int64?
    /// The merged params (`Value.merging`, map keys unique): config.yaml.
    var params: Value = .map([])
    /// An upper bound of `params`' encoded size (Writer.admitParams).
    var paramsBound = 0
    var metricCount: UInt64 = 0
    var logCount: UInt64 = 0
    let log: RotatingFile
    let metrics: RotatingFile
    /// TensorBoard event files (EventFile.swift); nil when `tensorboard` is off.
    let events: EventFile?
    var isOpen = true
    /// The run's active marker (`.logd/active/`) is written: only then is anything acknowledged,
    /// so a restart always finds the directory of every acknowledged record.
    var marked = false
    /// A new run's marker, directories and first checkpoint were written without fsync (a run's
    /// creation costs no waits on the writer's path): its first `makeDurable` makes them durable
    /// before it acknowledges anything. The data root and this marker's name.
    var unsyncedCreation: (rootfd: Int32, marker: String)?

    // Run outputs (RunOutputs.swift): summaries, artifacts, models, datasets.
    /// One running summary per (context, key), in the order keys first appeared.
    var summaries: [MetricSummary] = []
    var summaryIndex: [SummaryKey: Int] = [:]
    /// Artifacts and model versions, in the order received.
    var outputs: [OutputEntry] = []
    var models: [ModelEntry] = []
    var datasets: [DatasetInfo] = []
    /// Stored names in use (`artifacts/<name>`, `models/<dir>`), for unique names.
    var usedArtifactNames: Set<String> = []
    var usedModelDirs: Set<String> = []
    /// Copies of this run the copier has not finished.
    var activeCopies = 0
    /// The run ended while copies were running: its end is finished when they are.
    var deferredEnd: RunPhase?
    /// Snapshot files to rewrite; the summary is stale when metricCount moved past it.
    var stale: Snapshots = .all
    var summaryWrittenAt: UInt64 = .max
    /// summary.yaml's text of each summary as last rendered, and its count then: a rewrite
    /// renders only the keys that changed (RunOutputs.swift, `summaryYAML`).
    var summaryFragments: [[UInt8]] = []
    /// Per-key metric rows collected as metrics arrive (MetricFiles.KeyRows); nil: the run's
    /// end splits metrics.csv.
    var keyRows: MetricFiles.KeyRows?
    var summaryFragmentCounts: [UInt64] = []
    /// User names by uid (prov.json's agent), looked up once.
    var userNames: [UInt32: String] = [:]

    /// Something changed since the last snapshots (run.yaml and prov.json when set).
    var snapshotStale: Bool {
        get { !stale.isEmpty || summaryWrittenAt != metricCount }
        set {
            if newValue { stale.formUnion([.runYAML, .prov]) } else { stale = [] }
        }
    }
    var lastSnapshot: Int64 = 0
    /// Something was written since the last durability point.
    var needsDurability = true

    init(index: Int32, runID: String, directory: String, dirfd: Int32, identity: RunStart, config: LogdConfig) {
        self.index = index
        self.runID = runID
        self.directory = directory
        self.dirfd = dirfd
        self.identity = identity
        log = RotatingFile(
            dirfd: dirfd, stem: "main", ext: "log", header: [], rotateBytes: config.rotateBytes,
            keepSegments: config.keepLogSegments)
        metrics = RotatingFile(
            dirfd: dirfd, stem: "metrics", ext: "csv", header: RunFiles.metricsHeader, rotateBytes: config.rotateBytes,
            keepSegments: 0)
        events = EventFile.make(dirfd: dirfd, identity: identity, config: config)
    }

    /// Allocates `<root>/<experiment>/<YYYY-MM-DD_HH-MM-SS>_<name>/` for a new run. The name is
    /// made unique by exclusive mkdir (`_2`, `_3`, … on collision): no scanning, no sleeping.
    /// `intend` is called with each candidate directory before its mkdir (the writer records it
    /// durably in the active marker first, so a crash right after the mkdir leaves no orphan
    /// that a restart does not know about).
    static func create(
        index: Int32, rootfd: Int32, producer: ProducerInfo, config: LogdConfig,
        intend: (String) throws(SystemError) -> Void
    ) throws(SystemError) -> RunFiles {
        let start = producer.start
        // The experiment folder is opened without following symlinks; if something that is not
        // a directory sits at that name (a planted symlink, a file), the next free variant is used.
        let base0 = PathNames.component(start.experiment, fallback: "default")
        var experiment = base0
        var expfd: Int32 = -1
        for attempt in 1...100 {
            do {
                expfd = try Posix.makeDirectory(rootfd, experiment)
                break
            } catch {
                guard error.errno == ELOOP || error.errno == ENOTDIR, attempt < 100 else { throw error }
                experiment = base0 + "_\(attempt + 1)"
            }
        }
        defer { close(expfd) }
        let stamp = ISOTimeFormatter.directoryStamp(start.startTime > 0 ? start.startTime : Posix.realtimeNanos())
        let base = stamp + "_" + PathNames.component(start.name, fallback: "run")
        var name = base
        var n = 1
        while true {
            // Names already taken are skipped with a cheap lstat, so only a free candidate costs a
            // durable marker (many runs of one name in one second were quadratic in fsyncs).
            var st = stat()
            while fstatat(expfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, n < 10_000 {
                n += 1
                name = base + "_\(n)"
            }
            try intend(experiment + "/" + name)
            if mkdirat(expfd, name, 0o777) == 0 { break }  // the umask (run_directory_mode) decides the mode
            guard errno == EEXIST, n < 10_000 else { throw SystemError("mkdir", path: experiment + "/" + name) }
            n += 1
            name = base + "_\(n)"
        }
        FaultPoints.hit("after-mkdir")
        let dirfd = try Posix.openDirectory(expfd, name)
        let run = RunFiles(
            index: index, runID: start.runID, directory: experiment + "/" + name, dirfd: dirfd, identity: start,
            config: config)
        try run.log.open(checkpoint: nil)
        try run.metrics.open(checkpoint: nil)
        try run.events?.openNew()
        return run
    }

    /// Reopens a run directory from its checkpoint after a restart, cutting the files back to
    /// what the checkpoint covers (clients resend everything after it).
    static func recover(index: Int32, rootfd: Int32, directory: String, config: LogdConfig) throws(SystemError) -> RunFiles? {
        let fd = try Posix.openPath(rootfd, directory)
        guard let bytes = try Posix.readFile(fd, checkpointName),
            let cp = try? FrameDecoder(limits: RunFiles.checkpointLimits).decodeAll(bytes),
            case .params(let state)? = cp.first,
            case .string(let identityHex)? = state["identity"],
            let identityBytes = hexBytes(identityHex),
            case .runStart(let identity)? = try? FrameDecoder().decodeAll(identityBytes).first
        else {
            close(fd)
            return nil
        }
        // Every number of a checkpoint is range-checked before use: the file lives under the data
        // root, so its bytes are as untrusted as a client's. Out of range: not resumable (quarantined).
        func pair(_ v: Value?) -> (Int, Int)? {
            guard case .list(let l)? = v, l.count == 2, case .int(let a) = l[0], case .int(let b) = l[1],
                (0...1_000_000_000).contains(a), (0...(1 << 50)).contains(b)
            else { return nil }
            return (Int(a), Int(b))
        }
        func count(_ v: Value?) -> UInt64? {
            guard case .int(let n)? = v else { return 0 }
            return n >= 0 ? UInt64(n) : nil
        }
        guard let (logRotated, logOffset) = pair(state["main_log"]), let (metricsRotated, metricsOffset) = pair(state["metrics_csv"]),
            let metricCount = count(state["metric_count"]), let logCount = count(state["log_count"]),
            identity.startTime >= 0
        else {
            close(fd)
            return nil
        }
        let run = RunFiles(index: index, runID: identity.runID, directory: directory, dirfd: fd, identity: identity, config: config)
        try run.log.open(checkpoint: (logRotated, logOffset))
        try run.metrics.open(checkpoint: (metricsRotated, metricsOffset))
        try EventFile.recover(run.events, dirfd: fd, identity: identity, state: state)
        run.metricCount = metricCount
        run.logCount = logCount
        if let p = state["params"] { run.params = p }
        run.restoreOutputs(from: state)
        if case .list(let producers)? = state["producers"] {
            for p in producers {
                guard case .string(let startHex)? = p["start"], let startBytes = hexBytes(startHex),
                    case .runStart(let start)? = try? FrameDecoder().decodeAll(startBytes).first,
                    case .string(let sessionHex)? = p["session"], let session = SessionID(hex: sessionHex)
                else { continue }
                // Negative or absurd numbers are clamped: a producer's counters, never trusted.
                func int(_ k: String) -> Int64 { if case .int(let v)? = p[k] { return min(max(v, 0), Int64(Server.maxSeq)) } else { return 0 } }
                func str(_ k: String) -> String { if case .string(let v)? = p[k] { return v } else { return "" } }
                let info = ProducerInfo(
                    session: session, pid: Int32(truncatingIfNeeded: int("pid")), uid: UInt32(truncatingIfNeeded: int("uid")),
                    clientName: str("client"), clientVersion: str("client_version"), start: start)
                let seq = UInt64(int("durable_seq"))
                let received = max(seq, UInt64(int("received_seq")))
                run.producers.append(
                    Producer(
                        info: info, status: RunPhase(rawValue: str("status")) ?? .crashed, dropped: min(UInt64(int("dropped")), Server.maxCounter),
                        durableSeq: seq,
                        receivedSeq: received))
            }
        }
        return run
    }

    func producerIndex(_ session: SessionID) -> Int? { producers.firstIndex { $0.info.session == session } }

    /// The run's final status when every producer (at least `world_size` of them) had ended, as
    /// the loop derives it; nil while any is running or vanished.
    var endedStatus: RunPhase? {
        guard !producers.isEmpty, producers.count >= Int(identity.worldSize) else { return nil }
        let statuses = producers.map(\.status)
        guard statuses.allSatisfy(\.isEnded) else { return nil }
        return statuses.contains(.failed) ? .failed : statuses.contains(.killed) ? .killed : .finished
    }

    // MARK: durability

    /// The checkpoint: a PARAMS frame holding the state a restart resumes from.
    func checkpointBytes() throws(SystemError) -> [UInt8] {
        let encoder = FrameEncoder(limits: RunFiles.checkpointLimits)
        let identityHex = hexString((try? FrameEncoder().frame(.runStart(identity))) ?? [])
        var state: Value = [
            "format": "logd-checkpoint-1",
            "identity": .string(identityHex),
            "main_log": [.int(Int64(log.rotated)), .int(Int64(log.size))],
            "metrics_csv": [.int(Int64(metrics.rotated)), .int(Int64(metrics.size))],
            "metric_count": .int(Int64(clamping: metricCount)),
            "log_count": .int(Int64(clamping: logCount)),
            "producers": .list(
                producers.map { p in
                    [
                        "session": .string(p.info.session.description),
                        "durable_seq": .int(Int64(clamping: p.durableSeq)),
                        "received_seq": .int(Int64(clamping: p.receivedSeq)),
                        "pid": .int(Int64(p.info.pid)), "uid": .int(Int64(p.info.uid)),
                        "client": .string(p.info.clientName), "client_version": .string(p.info.clientVersion),
                        "status": .string(p.status.rawValue), "dropped": .int(Int64(clamping: p.dropped)),
                        "start": .string(hexString((try? FrameEncoder().frame(.runStart(p.info.start))) ?? [])),
                    ]
                }),
            "params": params,
        ]
        state = state.merging(outputsCheckpoint())
        if let events { state = state.merging([EventFile.checkpointKey: events.checkpointEntry]) }
        do {
            return try encoder.frame(.params(state))
        } catch {
            throw SystemError("encode checkpoint (\(error))", errno: EOVERFLOW, path: directory)
        }
    }

    /// Makes everything written so far durable: fsync the files, then replace the checkpoint.
    /// Returns the sessions whose durable frame number moved.
    func makeDurable() throws(SystemError) -> [(SessionID, UInt64)] {
        if let creation = unsyncedCreation {
            try RunFiles.syncCreation(rootfd: creation.rootfd, directory: directory, marker: creation.marker)
            unsyncedCreation = nil
        }
        try log.sync()
        try metrics.sync()
        try events?.sync()
        var moved: [(SessionID, UInt64)] = []
        let before = producers.map(\.durableSeq)
        for i in producers.indices where marked {
            // A copy still running holds its session's acknowledgement below its frame: the
            // frame is durable only once the copy is (a restart takes it again, see `holes`).
            let target = min(producers[i].receivedSeq, ackLimit(producers[i].info.session))
            guard target > producers[i].durableSeq else { continue }
            producers[i].durableSeq = target
            moved.append((producers[i].info.session, target))
        }
        FaultPoints.hit("before-checkpoint")
        do {
            try Posix.replaceFile(dirfd, RunFiles.checkpointName, try checkpointBytes())
        } catch {
            // Not durable after all: the next try moves (and reports) them again.
            for i in producers.indices where i < before.count { producers[i].durableSeq = before[i] }
            throw error
        }
        FaultPoints.hit("after-checkpoint")
        needsDurability = false
        return moved
    }

    /// fsyncs every snapshot file there is, then the directory: a run's last snapshots, some of
    /// them written unsynced while it ran, are final before it counts as finished.
    func syncSnapshotFiles() throws(SystemError) {
        var paths = ["config.yaml", "config_tree.txt", "summary.yaml", "prov.json", "run.yaml"]
        paths += models.map { "models/" + $0.dir + "/model.yaml" }
        for path in paths {
            let fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { continue }
                throw SystemError("open", path: path)
            }
            defer { close(fd) }
            try Posix.fsyncOrThrow(fd)
        }
        if !models.isEmpty {
            let fd = try Posix.openDirectory(dirfd, "models")
            defer { close(fd) }
            for m in models {
                let sub = openat(fd, m.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if sub < 0 { continue }  // no model.yaml written for it
                defer { close(sub) }
                try Posix.fsyncOrThrow(sub)
            }
            try Posix.fsyncOrThrow(fd)
        }
        try Posix.fsyncOrThrow(dirfd)
    }

    /// A new run's first checkpoint, before any record is written: present (not yet durable)
    /// so a logd killed from here on finds it; `makeDurable` fsyncs the next one.
    func writeFirstCheckpoint(rootfd: Int32, marker: String) throws(SystemError) {
        try log.drain()
        try metrics.drain()
        try events?.drain()
        FaultPoints.hit("before-checkpoint")
        try Posix.replaceFile(dirfd, RunFiles.checkpointName, try checkpointBytes(), sync: false)
        FaultPoints.hit("after-checkpoint")
        unsyncedCreation = (rootfd, marker)
        needsDurability = true
    }

    /// fsyncs what a run's creation wrote (RunFiles.create, Writer.writeMarker): the marker and
    /// its directory, the experiment directory (the run directory's name) and the data root
    /// (the experiment's). The run directory itself is fsynced with the next checkpoint.
    static func syncCreation(rootfd: Int32, directory: String, marker: String) throws(SystemError) {
        let statefd = try Posix.openDirectory(rootfd, ".logd")
        defer { close(statefd) }
        let activefd = try Posix.openDirectory(statefd, "active")
        defer { close(activefd) }
        let fd = openat(activefd, marker, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: ".logd/active/" + marker) }
        defer { close(fd) }
        try Posix.fsyncOrThrow(fd)
        try Posix.fsyncOrThrow(activefd)
        let experiment = String(directory.prefix { $0 != "/" })
        let expfd = try Posix.openDirectory(rootfd, experiment)
        defer { close(expfd) }
        try Posix.fsyncOrThrow(expfd)
        try Posix.fsyncOrThrow(rootfd)
    }

    // MARK: snapshots

    func runYAML(user: String) -> [UInt8] {
        let first = identity
        let received = metricCount &+ logCount
        let dropped = producers.reduce(UInt64(0)) { $0.addingReportingOverflow($1.dropped).overflow ? .max : $0 + $1.dropped }
        let producerList: [Value] = producers.map { p in
            let s = p.info.start
            return [
                "session": .string(p.info.session.description),
                "pid": .int(Int64(p.info.pid)), "uid": .int(Int64(p.info.uid)),
                "host": .string(s.host), "rank": .int(Int64(s.rank)), "local_rank": .int(Int64(s.localRank)),
                "world_size": .int(Int64(s.worldSize)),
                "client": .string(p.info.clientName + " " + p.info.clientVersion),
                "status": .string(p.status.rawValue), "dropped": .int(Int64(clamping: p.dropped)),
                "started": .string(ISOTimeFormatter.string(s.startTime)),
            ]
        }
        let doc: Value = [
            "run_id": .string(runID),
            "name": .string(first.name),
            "experiment": .string(first.experiment),
            "directory": .string(directory),
            "status": .string(status.rawValue),
            "start_time": .string(ISOTimeFormatter.string(first.startTime)),
            "end_time": endTime.map { .string(ISOTimeFormatter.string($0)) } ?? .null,
            "host": .string(first.host),
            "user": .string(user),
            "command_line": .list(first.commandLine.map(Value.string)),
            "working_directory": .string(first.workingDirectory),
            "git": ["commit": first.gitCommit.isEmpty ? .null : .string(first.gitCommit), "dirty": .string(first.gitDirty.name)],
            "seed": first.seed.map(Value.int) ?? .null,
            "tags": .list(first.tags.map(Value.string)),
            "world_size": .int(Int64(first.worldSize)),
            "producers": .list(producerList),
            "records": [
                "received": .int(Int64(clamping: received)), "metrics": .int(Int64(clamping: metricCount)),
                "log_lines": .int(Int64(clamping: logCount)), "dropped": .int(Int64(clamping: dropped)),
            ],
            "files": [
                "main_log_segments": .int(Int64(log.rotated + 1)), "metrics_csv_segments": .int(Int64(metrics.rotated + 1)),
            ],
        ]
        return YAMLEmitter.render(doc.merging(outputsForRunYAML()))
    }

    /// Rewrites the stale snapshot files, each replaced atomically (temp, rename): a reader or a
    /// killed logd sees the old file or the new one. `sync`: each fsynced before its rename, then
    /// one directory fsync for them all. A running run's snapshots are not synced (each is
    /// rendered from state its checkpoint holds, and a restart renders them all again: every
    /// fsync here cost a flush under load a sleep and a wake-up); a run's last ones are
    /// (RunFinisher), before its marker moves to finished/.
    /// `deferring`: snapshots left stale for a later call (a run's end leaves the O(keys) ones to
    /// the finisher).
    func writeSnapshots(user: String, now: Int64, sync: Bool = true, deferring: Snapshots = []) throws(SystemError) {
        var renamed = false
        func replace(_ name: String, _ bytes: [UInt8]) throws(SystemError) {
            try Posix.replaceFile(dirfd, name, bytes, sync: sync, syncDirectory: false)
            renamed = true
        }
        if stale.contains(.config) {
            try replace("config.yaml", YAMLEmitter.render(params))
            try replace("config_tree.txt", ConfigTree.render(params))
            stale.remove(.config)
        }
        if !deferring.contains(.summary) && (summaryWrittenAt != metricCount || stale.contains(.summary)) {
            try replace("summary.yaml", summaryYAML())
            summaryWrittenAt = metricCount
            stale.remove(.summary)
        }
        if stale.contains(.models) && !deferring.contains(.models) {
            try writeModelFiles(sync: sync)
            stale.remove(.models)
        }
        if stale.contains(.prov) && !deferring.contains(.prov) {
            // The agent is the person who ran the training: the first producer's uid (the
            // kernel's word). run.yaml's `user` stays the account logd runs as.
            try replace("prov.json", Provenance.document(for: self, user: runUser(fallback: user)))
            stale.remove(.prov)
        }
        if stale.contains(.runYAML) {
            try replace("run.yaml", runYAML(user: user))
            stale.remove(.runYAML)
        }
        if renamed && sync { try Posix.fsyncOrThrow(dirfd) }
        lastSnapshot = now
    }

    func closeFiles() {
        log.closeFile()
        metrics.closeFile()
        events?.closeFile()
        isOpen = false
    }

    func reopen() throws(SystemError) {
        guard !isOpen else { return }
        try log.open(checkpoint: (log.rotated, log.size))
        try metrics.open(checkpoint: (metrics.rotated, metrics.size))
        try events?.reopen()
        isOpen = true
    }

    deinit { close(dirfd) }
}
