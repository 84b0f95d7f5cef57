#if canImport(Glibc)
    import Glibc
#endif
import LogdRead
import LogdSystem
import Wire

/// A run directory's forwarding cursor, `.logd-forward-mlflow` (JSON, replaced atomically and
/// fsynced): the MLflow run it goes to and how far the server acknowledged. docs/MLFLOW.md.
struct Cursor {
    var trackingURI: String
    var experimentID = ""
    var mlflowRunID = ""
    var artifactURI = ""
    /// MLflow runs this node created for the run (deleted if another node's came first).
    var createdRuns: [String] = []
    /// metrics.csv position acknowledged: (segment, byte offset), see DurableMetrics.
    var segment = 1
    var offset = 0
    /// Rows acknowledged, set aside (refused or unreadable), and left out by the filters.
    var acked: UInt64 = 0
    var refusedMetrics: UInt64 = 0
    var skipped: UInt64 = 0
    /// Everything set aside (metrics, params, tags, artifacts) and the first 20 of them named.
    var refused: UInt64 = 0
    var refusedNames: [String] = []
    /// FNV-1a hashes of the params (`key\0value`) acknowledged, and of the tag set last sent.
    var paramsSent: Set<String> = []
    var tagsSent = ""
    /// MLflow artifact path → the file's size and mtime when uploaded.
    var artifactsSent: [String: String] = [:]
    /// This node's end status as sent (tag), and the checkpoint stamp at which all was done.
    var nodeStatus = ""
    var done = false
    var doneStamp = ""

    static let format = "logd-forward-mlflow-1"

    init(trackingURI: String) { self.trackingURI = trackingURI }

    /// Everything sent goes again (to another MLflow run).
    mutating func resetProgress() {
        segment = 1
        offset = 0
        acked = 0
        refusedMetrics = 0
        skipped = 0
        refused = 0
        refusedNames = []
        paramsSent = []
        tagsSent = ""
        artifactsSent = [:]
        nodeStatus = ""
        done = false
        doneStamp = ""
    }

    mutating func setAside(_ what: String) {
        refused += 1
        if refusedNames.count < 20 { refusedNames.append(String(what.prefix(300))) }
    }

    var value: Value {
        [
            "format": .string(Cursor.format),
            "tracking_uri": .string(trackingURI),
            "experiment_id": .string(experimentID),
            "mlflow_run_id": .string(mlflowRunID),
            "artifact_uri": .string(artifactURI),
            "created_runs": .list(createdRuns.map(Value.string)),
            "metrics_position": [.int(Int64(segment)), .int(Int64(offset))],
            "metrics_acked": .int(Int64(clamping: acked)),
            "metrics_refused": .int(Int64(clamping: refusedMetrics)),
            "metrics_skipped": .int(Int64(clamping: skipped)),
            "refused": .int(Int64(clamping: refused)),
            "refused_names": .list(refusedNames.map(Value.string)),
            "params_sent": .list(paramsSent.sorted().map(Value.string)),
            "tags_sent": .string(tagsSent),
            "artifacts_sent": .map(artifactsSent.sorted { $0.key < $1.key }.map { (key: $0.key, value: .string($0.value)) }),
            "node_status": .string(nodeStatus),
            "done": .bool(done),
            "done_stamp": .string(doneStamp),
        ]
    }

    static func load(_ dir: String) -> Cursor? {
        guard let v = ForwardState.cursor(runDirectory: dir), case .string(format)? = v["format"],
            case .string(let uri)? = v["tracking_uri"]
        else { return nil }
        func s(_ k: String) -> String { if case .string(let x)? = v[k] { x } else { "" } }
        func n(_ k: String) -> UInt64 { if case .int(let x)? = v[k], x > 0 { UInt64(x) } else { 0 } }
        func list(_ k: String) -> [String] {
            guard case .list(let l)? = v[k] else { return [] }
            return l.compactMap { if case .string(let x) = $0 { x } else { nil } }
        }
        var c = Cursor(trackingURI: uri)
        c.experimentID = s("experiment_id")
        c.mlflowRunID = s("mlflow_run_id")
        c.artifactURI = s("artifact_uri")
        c.createdRuns = list("created_runs")
        if case .list(let p)? = v["metrics_position"], p.count == 2, case .int(let a) = p[0], case .int(let b) = p[1], a >= 1, b >= 0,
            a < 1_000_000_000, b < (1 << 50)
        {
            c.segment = Int(a)
            c.offset = Int(b)
        }
        c.acked = n("metrics_acked")
        c.refusedMetrics = n("metrics_refused")
        c.skipped = n("metrics_skipped")
        c.refused = n("refused")
        c.refusedNames = list("refused_names")
        c.paramsSent = Set(list("params_sent"))
        c.tagsSent = s("tags_sent")
        if case .map(let m)? = v["artifacts_sent"] {
            for e in m { if case .string(let x) = e.value { c.artifactsSent[e.key] = x } }
        }
        c.nodeStatus = s("node_status")
        if case .bool(let d)? = v["done"] { c.done = d }
        c.doneStamp = s("done_stamp")
        return c
    }

    func save(_ dir: String) throws(SystemError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: dir) }
        defer { close(fd) }
        try Posix.replaceFile(fd, ForwardState.cursorName, Array((value.jsonText(pretty: true) + "\n").utf8))
    }
}
