#if canImport(Glibc)
    import Glibc
#endif
import LogdRead
import LogdSystem
import Wire

/// MLflow's REST API (https://mlflow.org/docs/latest/api_reference/rest-api.html), the calls the
/// forwarder makes. Connection errors, 429 and 5xx are retried here with exponential backoff and
/// full jitter, forever (until `stopping`); any other answer is returned.
package final class MLflowClient {
    package enum Answer {
        case ok(Value)
        /// A 4xx other than 429: MLflow's `error_code` and `message`.
        case refused(status: Int, code: String, message: String)
    }

    let http: HTTP
    let base: String
    /// Called with each failure that will be retried (for status), and with nil once one succeeds.
    var onRetry: (String?) -> Void = { _ in }
    /// Stops retrying (logd is exiting): the call throws `Stopped`.
    var stopping: () -> Bool = { false }
    private var rng = SystemRandomNumberGenerator()

    package struct Stopped: Error {}

    package init(settings: ForwardSettings) {
        http = HTTP(settings: settings)
        base = settings.trackingURI
    }

    /// One call, retried while the failure is one that passes (no answer, 429, 5xx).
    package func call(_ method: String, _ path: String, body: Value? = nil, raw: [UInt8]? = nil, uploadPath: String? = nil)
        throws(Stopped) -> Answer
    {
        var delayMs = 250.0
        var failed = false
        while true {
            if stopping() { throw Stopped() }
            let failure: String
            do {
                let bytes = raw ?? body.map { Array($0.jsonText().utf8) }
                let r = try http.request(method, base + path, body: bytes, uploadPath: uploadPath)
                if (200..<300).contains(r.status) {
                    if failed { onRetry(nil) }
                    let v = r.body.isEmpty ? Value.map([]) : ((try? JSON.parse(r.body)) ?? .map([]))
                    return .ok(v)
                }
                let doc = try? JSON.parse(r.body)
                let code: String = { if case .string(let c)? = doc?["error_code"] { c } else { "HTTP_\(r.status)" } }()
                let message: String = {
                    if case .string(let m)? = doc?["message"] { return m }
                    return String(r.text.prefix(300))
                }()
                if r.status == 429 || r.status >= 500 || r.status == 401 || r.status == 403 || r.status == 408 {
                    failure = "\(method) \(path): HTTP \(r.status) \(code): \(message)"
                } else {
                    if failed { onRetry(nil) }
                    return .refused(status: r.status, code: code, message: message)
                }
            } catch {
                failure = "\(method) \(path): \(error.description)"
            }
            failed = true
            onRetry(failure)
            // Full jitter: a uniform wait in [0, delay], the delay doubling up to 30 s.
            let wait = Double.random(in: 0...delayMs, using: &rng)
            sleepMs(max(50, wait))
            delayMs = min(delayMs * 2, 30_000)
        }
    }

    /// Sleeps in slices so a stop is seen within 100 ms.
    func sleepMs(_ ms: Double) {
        var left = ms
        while left > 0, !stopping() {
            let slice = min(left, 100)
            usleep(useconds_t(slice * 1000))
            left -= slice
        }
    }

    // MARK: calls

    /// The experiment id of `name`, created when missing (a concurrent create by another node
    /// is found by the second look-up).
    package func experimentID(name: String) throws(Stopped) -> Result<String, Refusal> {
        for _ in 0..<3 {
            switch try call("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + HTTP.escape(name)) {
            case .ok(let v):
                guard case .string(let id)? = v["experiment"]?["experiment_id"] else { return .failure(Refusal("no experiment id in reply")) }
                if case .string("deleted")? = v["experiment"]?["lifecycle_stage"] {
                    return .failure(Refusal("MLflow experiment '\(name)' is deleted: restore it or delete it for good"))
                }
                return .success(id)
            case .refused(_, let code, let message):
                guard code == "RESOURCE_DOES_NOT_EXIST" else { return .failure(Refusal("\(code): \(message)")) }
            }
            switch try call("POST", "/api/2.0/mlflow/experiments/create", body: ["name": .string(name)]) {
            case .ok(let v):
                if case .string(let id)? = v["experiment_id"] { return .success(id) }
            case .refused(_, let code, let message):
                guard code == "RESOURCE_ALREADY_EXISTS" else { return .failure(Refusal("\(code): \(message)")) }
            }
        }
        return .failure(Refusal("experiment '\(name)' could be neither found nor created"))
    }

    package struct RunInfo {
        package var runID: String
        package var startTime: Int64
        package var artifactURI: String
    }

    /// Active runs of the experiment tagged `logd.run_id = <runID>`.
    package func runs(experimentID: String, logdRunID: String) throws(Stopped) -> Result<[RunInfo], Refusal> {
        let quoted = logdRunID.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'")
        let body: Value = [
            "experiment_ids": [.string(experimentID)],
            "filter": .string("tags.`logd.run_id` = '\(quoted)'"),
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 1000,
        ]
        switch try call("POST", "/api/2.0/mlflow/runs/search", body: body) {
        case .ok(let v):
            var out: [RunInfo] = []
            if case .list(let runs)? = v["runs"] {
                for r in runs {
                    guard case .string(let id)? = r["info"]?["run_id"] else { continue }
                    var start: Int64 = 0
                    switch r["info"]?["start_time"] {
                    case .int(let t)?: start = t
                    case .string(let t)?: start = Int64(t) ?? 0
                    default: break
                    }
                    let uri: String = { if case .string(let u)? = r["info"]?["artifact_uri"] { u } else { "" } }()
                    out.append(RunInfo(runID: id, startTime: start, artifactURI: uri))
                }
            }
            return .success(out)
        case .refused(_, let code, let message): return .failure(Refusal("runs/search: \(code): \(message)"))
        }
    }

    package func createRun(experimentID: String, name: String, startTime: Int64, user: String, tags: [(String, String)]) throws(Stopped)
        -> Result<String, Refusal>
    {
        let body: Value = [
            "experiment_id": .string(experimentID),
            "run_name": .string(name),
            "start_time": .int(startTime),
            "user_id": .string(user),
            "tags": .list(tags.map { ["key": .string($0.0), "value": .string($0.1)] }),
        ]
        switch try call("POST", "/api/2.0/mlflow/runs/create", body: body) {
        case .ok(let v):
            guard case .string(let id)? = v["run"]?["info"]?["run_id"] else { return .failure(Refusal("runs/create: no run id")) }
            return .success(id)
        case .refused(_, let code, let message): return .failure(Refusal("runs/create: \(code): \(message)"))
        }
    }

    package func getRun(_ runID: String) throws(Stopped) -> Result<Value, Refusal> {
        switch try call("GET", "/api/2.0/mlflow/runs/get?run_id=" + HTTP.escape(runID)) {
        case .ok(let v): return .success(v["run"] ?? .map([]))
        case .refused(_, let code, let message): return .failure(Refusal("runs/get: \(code): \(message)"))
        }
    }

    package func deleteRun(_ runID: String) throws(Stopped) {
        _ = try call("POST", "/api/2.0/mlflow/runs/delete", body: ["run_id": .string(runID)])
    }

    package func updateRun(_ runID: String, status: String, endTime: Int64) throws(Stopped) -> Answer {
        try call(
            "POST", "/api/2.0/mlflow/runs/update",
            body: ["run_id": .string(runID), "status": .string(status), "end_time": .int(endTime)])
    }

    /// `runs/log-batch` with a body already rendered (metrics are rendered by hand: NaN/inf).
    package func logBatch(_ body: [UInt8]) throws(Stopped) -> Answer {
        try call("POST", "/api/2.0/mlflow/runs/log-batch", raw: body)
    }

    /// Uploads a file through the tracking server's artifact proxy (`mlflow-artifacts:/` URIs).
    package func upload(artifactRoot: String, path: String, file: String) throws(Stopped) -> Answer {
        try call(
            "PUT", "/api/2.0/mlflow-artifacts/artifacts/" + HTTP.escape(artifactRoot + "/" + path, keepSlash: true), uploadPath: file)
    }
}

package struct Refusal: Error, CustomStringConvertible {
    package var description: String
    init(_ d: String) { description = d }
}

extension String {
    func replacingAll(_ a: String, with b: String) -> String {
        guard !a.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
