#if canImport(Glibc)
    import Glibc
#endif
import LogdRead
import LogdSystem
import Wire

/// Forwards the runs under a data root to an MLflow tracking server, from what is durable in
/// each run directory, on a thread of its own (never the loop or the writer). docs/MLFLOW.md
/// describes the protocol; in short, per run and per pass:
///
/// 1. find the run's MLflow run (tag `logd.run_id`), creating it when none exists; every node
///    agrees on the one with the earliest start (then the smallest id), and a node that created
///    a loser deletes it and sends its records again to the winner;
/// 2. tags (identity, this node's ranks and status), params (config.yaml flattened);
/// 3. metrics.csv rows up to the checkpoint, in batches of at most 1000, the cursor moving only
///    past what the server acknowledged (an exact resend is dropped by the server, so a crash
///    between the answer and the cursor write duplicates nothing);
/// 4. once the run has ended and every durable row is acknowledged: the files as artifacts, this
///    node's end, and the run's status once every rank's node has ended.
package final class Forwarder: @unchecked Sendable {
    package enum LogLevel { case info, warning, error }
    /// The status file under the data root (`logctl status` reads it).
    package static let statusPath = ForwardState.statusPath

    let settings: ForwardSettings
    let dataRoot: String
    let log: @Sendable (LogLevel, String) -> Void
    private let lock = ConditionLock()
    private var stopFlag = false
    private var thread: NativeThread?

    // Forwarder-thread state.
    private var client: MLflowClient
    private var experimentIDs: [String: String] = [:]
    private var reports: [String: RunReport] = [:]
    private var lastVerify: [String: Int64] = [:]
    /// Runs caught up at this checkpoint stamp (still running): skipped until the stamp moves,
    /// so an idle run costs one stat per pass, not a read of its run.yaml, config and checkpoint.
    private var idleAt: [String: String] = [:]
    private var logged: Set<String> = []
    private var retryError: String?
    private var lastStatusText = ""
    /// How often a node checks that its MLflow run is still the one all nodes agree on, ns.
    let verifyIntervalNs: Int64 = 10_000_000_000
    /// Time one run may take per pass before the next run's turn, ns.
    let runBudgetNs: Int64 = 2_000_000_000

    struct RunReport {
        var runID: String
        var directory: String
        var mlflowRunID: String
        var state: String
        var behind: UInt64
        var refused: UInt64
        var refusedNames: [String]
        var lastError: String?
        var updated: Int64
    }

    package init(settings: ForwardSettings, dataRoot: String, log: @escaping @Sendable (LogLevel, String) -> Void) {
        self.settings = settings
        self.dataRoot = dataRoot.count > 1 && dataRoot.hasSuffix("/") ? String(dataRoot.dropLast()) : dataRoot
        self.log = log
        client = MLflowClient(settings: settings)
    }

    package func start() {
        client.stopping = { [unowned self] in self.isStopping }
        client.onRetry = { [unowned self] failure in
            if let failure {
                if self.retryError == nil { self.log(.warning, "mlflow: \(failure); retrying with backoff") }
                self.retryError = failure
            } else if self.retryError != nil {
                self.log(.info, "mlflow: \(self.settings.displayURI) answers again")
                self.retryError = nil
            }
            self.writeStatus()
        }
        log(.info, "forwarding runs under \(dataRoot) to MLflow at \(settings.displayURI)")
        thread = NativeThread(name: "logd-forward") { [self] in self.main() }
    }

    /// Asks the thread to stop (a retry loop or a pass in progress ends within ~100 ms of a
    /// request finishing); waits at most `waitMs` for it.
    package func stop(waitMs: Int = 2000) {
        lock.withLock {
            stopFlag = true
            lock.broadcast()
        }
        _ = waitMs
    }

    var isStopping: Bool { lock.withLock { stopFlag } }

    private func main() {
        while !isStopping {
            do { try pass() } catch {
                break  // stopping
            }
            writeStatus()
            lock.withLock {
                if !stopFlag { lock.wait(untilMonotonic: Posix.monotonicNanos() + Int64(settings.intervalMs) * 1_000_000) }
            }
        }
    }

    // MARK: a pass

    func pass() throws(MLflowClient.Stopped) {
        for dir in runDirectories() {
            if isStopping { throw MLflowClient.Stopped() }
            try process(dir)
        }
    }

    /// Run directories under the data root (`<experiment>/<run>`, hidden names skipped).
    func runDirectories() -> [String] {
        var out: [String] = []
        for exp in FS.list(dataRoot) where !exp.hasPrefix(".") {
            let e = dataRoot + "/" + exp
            guard FS.isDirectory(e) else { continue }
            for run in FS.list(e) where !run.hasPrefix(".") {
                let d = e + "/" + run
                if FS.isFile(d + "/.logd-checkpoint") { out.append(d) }
            }
        }
        return out.sorted()
    }

    func logOnce(_ key: String, _ level: LogLevel, _ message: String) {
        if logged.count > 100_000 { logged.removeAll() }  // bounded; a repeat after that is logged again
        if logged.insert(key).inserted { log(level, message) }
    }

    func process(_ dir: String) throws(MLflowClient.Stopped) {
        guard let stamp = Checkpoint.stamp(runDirectory: dir) else { return }
        var cur = Cursor.load(dir) ?? Cursor(trackingURI: settings.trackingURI)
        if cur.trackingURI != settings.trackingURI { cur = Cursor(trackingURI: settings.trackingURI) }
        if cur.done && cur.doneStamp == stamp { return }
        if idleAt[dir] == stamp, !cur.mlflowRunID.isEmpty { return }
        idleAt[dir] = nil
        guard let run = RunDirectory.open(dir), run.loadError == nil, !run.runID.isEmpty, let cp = Checkpoint.read(runDirectory: dir)
        else { return }
        if let only = settings.experiments, !only.contains(run.experiment) { return }
        let rel = run.relative
        var report =
            reports[dir]
            ?? RunReport(
                runID: run.runID, directory: rel, mlflowRunID: cur.mlflowRunID, state: "starting", behind: cp.metricCount, refused: 0,
                refusedNames: [], lastError: nil, updated: 0)
        defer {
            report.mlflowRunID = cur.mlflowRunID
            report.refused = cur.refused
            report.refusedNames = cur.refusedNames
            report.behind = cp.metricCount &- min(cp.metricCount, cur.acked + cur.refusedMetrics + cur.skipped)
            report.updated = Posix.realtimeNanos()
            reports[dir] = report
        }
        // Listed in status before the first request (which may wait out an outage).
        report.behind = cp.metricCount &- min(cp.metricCount, cur.acked + cur.refusedMetrics + cur.skipped)
        reports[dir] = report
        let node = NodeIdentity(run: run)
        if cur.done {
            // Ended before, and the checkpoint moved since: the run was reopened.
            cur.done = false
            cur.nodeStatus = ""
        }

        // 1. The MLflow run.
        let now = Posix.monotonicNanos()
        if cur.mlflowRunID.isEmpty || now - (lastVerify[dir] ?? 0) > verifyIntervalNs {
            switch try resolve(&cur, run: run, dir: dir) {
            case .success: lastVerify[dir] = now
            case .failure(let refusal):
                report.state = "error"
                report.lastError = refusal.description
                logOnce("resolve:" + dir + refusal.description, .error, "mlflow: run \(run.runID): \(refusal)")
                return
            }
        }
        report.state = "forwarding"
        report.lastError = nil

        // 2. Tags and params.
        try sendTags(&cur, run: run, node: node, dir: dir)
        try sendParams(&cur, run: run, dir: dir)

        // 3. Metrics.
        let caughtUp = try sendMetrics(&cur, cp: cp, dir: dir)
        guard caughtUp else { return }
        report.state = "caught up"
        if node.phase(run) == nil, Checkpoint.stamp(runDirectory: dir) == stamp { idleAt[dir] = stamp }

        // 4. The end, once it is complete on disk: logd finishes an ended run (its metrics/
        // files, the final prov.json) after run.yaml says it ended, and moves its marker last.
        guard let phase = node.phase(run), Checkpoint.stamp(runDirectory: dir) == stamp else { return }
        // (Only when run.yaml itself says so: a node of a multi-node run ends its part while its
        // run stays running, and active, until the other ranks' wait is over.)
        if let ended = run.phase, ended.isEnded, ended != .crashed, dir.hasPrefix(dataRoot + "/"),
            RunMarker.isActive(dataRoot: dataRoot, directory: String(dir.dropFirst(dataRoot.count + 1)))
        {
            return
        }
        if settings.artifacts { try sendArtifacts(&cur, run: run, node: node, dir: dir) }
        // One more look before the end: the run all nodes agree on.
        let before = cur.mlflowRunID
        if case .failure = try resolve(&cur, run: run, dir: dir) { return }
        if cur.mlflowRunID != before { return }  // switched: the next pass sends everything again
        try finishNode(&cur, run: run, node: node, phase: phase, dir: dir)
        cur.done = true
        cur.doneStamp = stamp
        save(cur, dir)
        report.state = "done"
    }

    func save(_ cur: Cursor, _ dir: String) {
        do { try cur.save(dir) } catch {
            logOnce("save:" + dir, .error, "mlflow: cannot write the cursor of \(dir): \(error)")
        }
    }

    // MARK: 1. finding the run

    func resolve(_ cur: inout Cursor, run: RunDirectory, dir: String) throws(MLflowClient.Stopped) -> Result<Void, Refusal> {
        let expID: String
        if let known = experimentIDs[run.experiment] {
            expID = known
        } else {
            switch try client.experimentID(name: run.experiment) {
            case .success(let id):
                expID = id
                experimentIDs[run.experiment] = id
            case .failure(let r): return .failure(r)
            }
        }
        var found: [MLflowClient.RunInfo]
        switch try client.runs(experimentID: expID, logdRunID: run.runID) {
        case .success(let r): found = r
        case .failure(let r): return .failure(r)
        }
        if found.isEmpty {
            let user: String = { if case .string(let u)? = run.info["user"] { u } else { "" } }()
            let start = (run.startNanos ?? Posix.realtimeNanos()) / 1_000_000
            let tags: [(String, String)] = [("logd.run_id", run.runID), ("mlflow.runName", run.name), ("mlflow.user", user)]
            switch try client.createRun(experimentID: expID, name: run.name, startTime: start, user: user, tags: tags) {
            case .success(let id):
                cur.createdRuns.append(id)
                cur.experimentID = expID
                save(cur, dir)  // a restart must know it created this one (to delete it if it loses)
            case .failure(let r): return .failure(r)
            }
            switch try client.runs(experimentID: expID, logdRunID: run.runID) {
            case .success(let r): found = r
            case .failure(let r): return .failure(r)
            }
            guard !found.isEmpty else { return .failure(Refusal("the created run is not found by runs/search")) }
        }
        let winner = found.min { a, b in a.startTime != b.startTime ? a.startTime < b.startTime : a.runID < b.runID }!
        if winner.runID != cur.mlflowRunID {
            if !cur.mlflowRunID.isEmpty {
                log(
                    .warning,
                    "mlflow: run \(run.runID): another node's MLflow run \(winner.runID) came first; "
                        + "sending everything again there instead of \(cur.mlflowRunID)")
            }
            cur.resetProgress()
            cur.mlflowRunID = winner.runID
            cur.experimentID = expID
        }
        cur.artifactURI = winner.artifactURI
        // Runs this node created that lost: deleted, so one MLflow run remains.
        for id in cur.createdRuns where id != winner.runID && found.contains(where: { $0.runID == id }) {
            try client.deleteRun(id)
            log(.info, "mlflow: run \(run.runID): deleted duplicate MLflow run \(id) (another node created \(winner.runID) first)")
        }
        cur.createdRuns = cur.createdRuns.filter { $0 == winner.runID }
        save(cur, dir)
        return .success(())
    }

    // MARK: 2. tags and params

    func identityTags(run: RunDirectory, node: NodeIdentity) -> [(String, String)] {
        func s(_ k: String) -> String? {
            switch run.info[k] {
            case .string(let v)?: return v
            case .int(let v)?: return String(v)
            default: return nil
            }
        }
        var tags: [(String, String)] = [("logd.run_id", run.runID), ("mlflow.runName", run.name), ("logd.experiment", run.experiment)]
        if let u = s("user") { tags.append(("mlflow.user", u)) }
        if case .list(let cmd)? = run.info["command_line"] {
            tags.append(("mlflow.source.name", cmd.map { Mapping.scalarText($0) }.joined(separator: " ")))
        }
        if case .string(let c)? = run.info["git"]?["commit"] { tags.append(("mlflow.source.git.commit", c)) }
        if case .string(let d)? = run.info["git"]?["dirty"] { tags.append(("logd.git.dirty", d)) }
        if let seed = s("seed") { tags.append(("logd.seed", seed)) }
        if let ws = s("world_size") { tags.append(("logd.world_size", ws)) }
        if case .list(let t)? = run.info["tags"], !t.isEmpty {
            tags.append(("logd.tags", t.map { Mapping.scalarText($0) }.joined(separator: ",")))
        }
        let p = node.tagPrefix
        tags.append((p + "host", node.host))
        tags.append((p + "ranks", node.ranks.map(String.init).joined(separator: ",")))
        tags.append((p + "directory", run.relative))
        return tags
    }

    func sendTags(_ cur: inout Cursor, run: RunDirectory, node: NodeIdentity, dir: String) throws(MLflowClient.Stopped) {
        let tags = identityTags(run: run, node: node).map { (k, v) in
            (Mapping.validName(k), Mapping.boundedValue(v, limit: Mapping.maxTagValueLength, whereWhole: "run.yaml").0)
        }
        let hash = Mapping.hex16(Mapping.fnv1a(tags.map { $0.0 + "\u{0}" + $0.1 }.joined(separator: "\u{1}")))
        guard hash != cur.tagsSent else { return }
        for chunk in stride(from: 0, to: tags.count, by: 100) {
            let part = Array(tags[chunk..<min(tags.count, chunk + 100)])
            try sendKeyValues(&cur, kind: "tags", part, dir: dir)
        }
        cur.tagsSent = hash
        save(cur, dir)
    }

    func sendParams(_ cur: inout Cursor, run: RunDirectory, dir: String) throws(MLflowClient.Stopped) {
        guard let config = run.config() else { return }
        var pending: [(String, String)] = []
        var hashes: [String] = []
        for (k, v) in Mapping.flattenParams(config) {
            let key = Mapping.validName(k)
            let (value, cut) = Mapping.boundedValue(v, limit: Mapping.maxParamValueLength, whereWhole: "config.yaml")
            let h = Mapping.hex16(Mapping.fnv1a(key + "\u{0}" + value))
            if cur.paramsSent.contains(h) { continue }
            if cut { logOnce("cut:" + dir + key, .info, "mlflow: run \(run.runID): param \(key) is \(v.utf8.count) bytes; sent cut, marked") }
            pending.append((key, value))
            hashes.append(h)
        }
        guard !pending.isEmpty else { return }
        for chunk in stride(from: 0, to: pending.count, by: 100) {
            let end = min(pending.count, chunk + 100)
            try sendKeyValues(&cur, kind: "params", Array(pending[chunk..<end]), dir: dir)
            cur.paramsSent.formUnion(hashes[chunk..<end])
            save(cur, dir)
        }
    }

    /// Tags or params in one log-batch; a refused batch is split down to the refused entries,
    /// which are set aside (counted, logged once, named in status).
    func sendKeyValues(_ cur: inout Cursor, kind: String, _ items: [(String, String)], dir: String) throws(MLflowClient.Stopped) {
        guard !items.isEmpty else { return }
        var body = "{\"run_id\":" + Mapping.jsonString(cur.mlflowRunID) + ",\"\(kind)\":["
        for (i, (k, v)) in items.enumerated() {
            if i > 0 { body += "," }
            body += "{\"key\":" + Mapping.jsonString(k) + ",\"value\":" + Mapping.jsonString(v) + "}"
        }
        body += "]}"
        switch try client.logBatch(Array(body.utf8)) {
        case .ok: return
        case .refused(let status, let code, let message):
            if items.count > 1 {
                let half = items.count / 2
                try sendKeyValues(&cur, kind: kind, Array(items[..<half]), dir: dir)
                try sendKeyValues(&cur, kind: kind, Array(items[half...]), dir: dir)
                return
            }
            let what = "\(kind == "tags" ? "tag" : "param") \(items[0].0)"
            cur.setAside(what + ": " + message)
            logOnce("refused:" + dir + what, .warning, "mlflow: \(what) refused (HTTP \(status) \(code): \(message)); set aside")
        }
    }

    // MARK: 3. metrics

    struct Pending {
        var json: String
        var name: String
    }

    /// Sends durable rows for at most `runBudgetNs`; true when every durable row is acknowledged.
    func sendMetrics(_ cur: inout Cursor, cp: Checkpoint, dir: String) throws(MLflowClient.Stopped) -> Bool {
        let reader = DurableMetrics(directory: dir)
        let started = Posix.monotonicNanos()
        while Posix.monotonicNanos() - started < runBudgetNs {
            if isStopping { throw MLflowClient.Stopped() }
            let (rows, caughtUp) = reader.rows(from: (cur.segment, cur.offset), cp, maxBytes: 1 << 20)
            if caughtUp { return true }
            var i = 0
            while i < rows.count {
                var batch: [Pending] = []
                var skipped: UInt64 = 0, unreadable: UInt64 = 0
                var last = rows[i]
                while i < rows.count && batch.count < 1000 {
                    let r = rows[i]
                    last = r
                    i += 1
                    guard let row = r.row else {
                        // The header, or a row logd cannot read (never written by logd).
                        if !r.header { unreadable += 1 }
                        continue
                    }
                    let key = Mapping.metricKey(context: row.context, key: row.key, rank: row.rank, source: row.source)
                    guard settings.admits(key: key, rank: row.rank) else {
                        skipped += 1
                        continue
                    }
                    let json =
                        "{\"key\":" + Mapping.jsonString(key) + ",\"value\":" + Mapping.jsonDouble(row.value) + ",\"timestamp\":"
                        + String(row.timeMs) + ",\"step\":" + String(row.step) + "}"
                    batch.append(Pending(json: json, name: key))
                }
                let refusedBefore = cur.refusedMetrics
                try sendMetricBatch(&cur, batch, dir: dir)
                let refusedNow = cur.refusedMetrics - refusedBefore
                cur.acked += UInt64(batch.count) - refusedNow
                cur.skipped += skipped
                if unreadable > 0 {
                    cur.refusedMetrics += unreadable
                    cur.setAside("\(unreadable) unreadable metrics.csv rows")
                }
                cur.segment = last.segment
                cur.offset = last.end
                FaultPoints.hit("forward-batch-acked")
                save(cur, dir)
                FaultPoints.hit("forward-cursor-written")
            }
        }
        return false
    }

    func sendMetricBatch(_ cur: inout Cursor, _ batch: [Pending], dir: String) throws(MLflowClient.Stopped) {
        guard !batch.isEmpty else { return }
        var body = "{\"run_id\":" + Mapping.jsonString(cur.mlflowRunID) + ",\"metrics\":["
        body.reserveCapacity(batch.count * 96 + 64)
        for (i, p) in batch.enumerated() {
            if i > 0 { body += "," }
            body += p.json
        }
        body += "]}"
        switch try client.logBatch(Array(body.utf8)) {
        case .ok: return
        case .refused(let status, let code, let message):
            if batch.count > 1 {
                let half = batch.count / 2
                try sendMetricBatch(&cur, Array(batch[..<half]), dir: dir)
                try sendMetricBatch(&cur, Array(batch[half...]), dir: dir)
                return
            }
            cur.refusedMetrics += 1
            cur.setAside("metric \(batch[0].name): \(message)")
            logOnce(
                "refused:" + dir + batch[0].name, .warning,
                "mlflow: metric \(batch[0].name) refused (HTTP \(status) \(code): \(message)); set aside")
        }
    }

    // MARK: 4. the end

    /// The run's files as artifacts: rank 0's node at the top, other nodes under
    /// `nodes/rank<R>/` (R: the node's lowest rank).
    func sendArtifacts(_ cur: inout Cursor, run: RunDirectory, node: NodeIdentity, dir: String) throws(MLflowClient.Stopped) {
        let prefixURI = "mlflow-artifacts:"
        guard cur.artifactURI.hasPrefix(prefixURI) else {
            logOnce(
                "artifacts:" + settings.trackingURI, .warning,
                "mlflow: artifacts not forwarded: the run's artifact URI is '\(cur.artifactURI)', not one the tracking server "
                    + "proxies (start mlflow server with --artifacts-destination)")
            return
        }
        var root = String(cur.artifactURI.dropFirst(prefixURI.count))
        while root.hasPrefix("/") { root.removeFirst() }
        let prefix = node.artifactPrefix
        var files: [String] = []
        for name in ["config.yaml", "config_tree.txt", "summary.yaml", "run.yaml", "prov.json"] where FS.isFile(dir + "/" + name) {
            files.append(name)
        }
        files += run.segments(stem: "main", ext: "log").map { String($0.dropFirst(dir.count + 1)) }
        for sub in ["artifacts", "models"] { walk(dir, sub, depth: 0, into: &files) }
        for rel in files {
            var st = stat()
            guard stat(dir + "/" + rel, &st) == 0 else { continue }
            let stamp = "\(st.st_size):\(st.st_mtim.tv_sec):\(st.st_mtim.tv_nsec)"
            let target = prefix + rel
            if cur.artifactsSent[target] == stamp { continue }
            switch try client.upload(artifactRoot: root, path: target, file: dir + "/" + rel) {
            case .ok: break
            case .refused(let status, let code, let message):
                cur.setAside("artifact \(target): \(message)")
                logOnce("refused:" + dir + target, .warning, "mlflow: artifact \(target) refused (HTTP \(status) \(code): \(message))")
            }
            cur.artifactsSent[target] = stamp
            save(cur, dir)
        }
    }

    func walk(_ dir: String, _ rel: String, depth: Int, into files: inout [String]) {
        guard depth < 16 else { return }
        for name in FS.list(dir + "/" + rel).sorted() where !name.hasPrefix(".") && !name.hasSuffix(".part") {
            let r = rel + "/" + name
            guard let st = FS.lstatInfo(dir + "/" + r) else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                walk(dir, r, depth: depth + 1, into: &files)
            } else if (st.st_mode & S_IFMT) == S_IFREG {
                files.append(r)
            }
        }
    }

    /// This node's end as tags, then the run's status once every rank's node has ended (each
    /// node writes its end before it reads the others', so the last one to end sees them all).
    func finishNode(_ cur: inout Cursor, run: RunDirectory, node: NodeIdentity, phase: RunPhase, dir: String) throws(MLflowClient.Stopped) {
        let endMs = (run.endNanos ?? Posix.realtimeNanos()) / 1_000_000
        if cur.nodeStatus != phase.rawValue {
            try sendKeyValues(
                &cur, kind: "tags", [(node.tagPrefix + "status", phase.rawValue), (node.tagPrefix + "end_time", String(endMs))], dir: dir)
            cur.nodeStatus = phase.rawValue
            save(cur, dir)
        }
        guard case .success(let mlrun) = try client.getRun(cur.mlflowRunID) else { return }
        var ranks = Set<Int64>()
        var statuses: [String] = []
        var end: Int64 = endMs
        var tags: [String: String] = [:]
        if case .list(let list)? = mlrun["data"]?["tags"] {
            for t in list { if case .string(let k)? = t["key"], case .string(let v)? = t["value"] { tags[k] = v } }
        }
        for (k, v) in tags where k.hasPrefix("logd.node.") && k.hasSuffix(".ranks") {
            let p = String(k.dropLast("ranks".count))
            guard let st = tags[p + "status"], let ended = RunPhase(rawValue: st), ended.isEnded else { continue }
            statuses.append(st)
            for r in v.split(separator: ",") { if let n = Int64(r) { ranks.insert(n) } }
            if let e = tags[p + "end_time"].flatMap({ Int64($0) }) { end = max(end, e) }
        }
        let worldSize: Int64 = { if case .int(let w)? = run.info["world_size"] { max(1, w) } else { 1 } }()
        guard Int64(ranks.count) >= worldSize else { return }
        let status = statuses.contains("failed") ? "FAILED" : statuses.contains("killed") ? "KILLED" : "FINISHED"
        if case .refused(_, let code, let message) = try client.updateRun(cur.mlflowRunID, status: status, endTime: end) {
            cur.setAside("run status: \(code): \(message)")
        }
    }

    // MARK: status

    /// `<data root>/.logd/forward-mlflow.json`: replaced atomically, not fsynced (it is rebuilt
    /// by every pass).
    func writeStatus() {
        var runs: [Value] = []
        let hourAgo = Posix.realtimeNanos() - 3_600_000_000_000
        for (dir, r) in reports.sorted(by: { $0.key < $1.key }) {
            if r.state == "done" && r.refused == 0 && r.updated < hourAgo {
                reports[dir] = nil
                continue
            }
            runs.append(
                [
                    "run_id": .string(r.runID), "directory": .string(r.directory), "mlflow_run_id": .string(r.mlflowRunID),
                    "state": .string(retryError != nil && r.state != "done" ? "retrying" : r.state),
                    "behind": .int(Int64(clamping: r.behind)), "refused": .int(Int64(clamping: r.refused)),
                    "refused_names": .list(r.refusedNames.map(Value.string)),
                    "last_error": (r.lastError ?? (r.state != "done" ? retryError : nil)).map(Value.string) ?? .null,
                ])
        }
        let doc: Value = [
            "tracking_uri": .string(settings.displayURI),
            "state": .string(retryError == nil ? "ok" : "retrying"),
            "last_error": retryError.map(Value.string) ?? .null,
            "runs": .list(runs),
        ]
        let text = doc.jsonText(pretty: true) + "\n"
        guard text != lastStatusText else { return }
        let fd = open(dataRoot + "/.logd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        if (try? Posix.replaceFile(fd, "forward-mlflow.json", Array(text.utf8), sync: false)) != nil { lastStatusText = text }
    }
}

/// Which part of a multi-node run this data root holds: its ranks (run.yaml's producers), named
/// by the lowest one.
struct NodeIdentity {
    var ranks: [Int64]
    var host: String

    init(run: RunDirectory) {
        var r = Set<Int64>()
        if case .list(let producers)? = run.info["producers"] {
            for p in producers { if case .int(let n)? = p["rank"] { r.insert(n) } }
        }
        ranks = r.sorted()
        if ranks.isEmpty { ranks = [0] }
        host = { if case .string(let h)? = run.info["host"] { h } else { "" } }()
    }

    var lowest: Int64 { ranks.first ?? 0 }

    /// This node's part has ended: the run has, or every producer that joined it here has (a
    /// node of a multi-node run never sees `world_size` producers end, so its run.yaml may stay
    /// `running`). nil while any producer runs or vanished (`crashed` may come back).
    func phase(_ run: RunDirectory) -> RunPhase? {
        if let p = run.phase, p.isEnded { return p }
        guard case .list(let producers)? = run.info["producers"], !producers.isEmpty else { return nil }
        var statuses: [RunPhase] = []
        for p in producers {
            guard case .string(let s)? = p["status"], let phase = RunPhase(rawValue: s), phase.isEnded else { return nil }
            statuses.append(phase)
        }
        return statuses.contains(.failed) ? .failed : statuses.contains(.killed) ? .killed : .finished
    }
    var tagPrefix: String { "logd.node.rank\(lowest)." }
    var artifactPrefix: String { ranks.contains(0) ? "" : "nodes/rank\(lowest)/" }
}
