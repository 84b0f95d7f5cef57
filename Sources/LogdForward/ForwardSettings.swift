#if canImport(Glibc)
    import Glibc
#endif
import LogdRead
import Wire

/// Where and what to forward (docs/MLFLOW.md). From the config file's `forward: {mlflow: …}`
/// section, else MLflow's own environment variables (MLFLOW_TRACKING_URI, …). Off when neither
/// names a tracking URI.
package struct ForwardSettings: Sendable, Equatable {
    /// `http(s)://host[:port][/prefix]`, no trailing `/`.
    package var trackingURI: String
    package var username: String?
    package var password: String?
    package var token: String?
    package var insecureTLS = false
    package var serverCertPath: String?
    package var clientCertPath: String?
    /// fnmatch(3) patterns on the MLflow metric key: only matching keys are forwarded (empty: all).
    package var includeKeys: [String] = []
    /// fnmatch(3) patterns on the MLflow metric key: matching keys are not forwarded.
    package var excludeKeys: [String] = []
    /// Only these ranks' metrics (nil: all).
    package var ranks: [Int64]? = nil
    /// Only runs of these experiments (nil: all).
    package var experiments: [String]? = nil
    /// Upload the run's files as MLflow artifacts when the run ends.
    package var artifacts = true
    /// How often the forwarder looks for new durable data, ms.
    package var intervalMs = 1000

    package struct Invalid: Error, CustomStringConvertible {
        package var description: String
    }

    /// The settings from the config file text (its `forward:` section) over the environment;
    /// nil when forwarding is off.
    package static func resolve(configText: String?, environment: [String: String]) throws(Invalid) -> ForwardSettings? {
        var section: Value? = nil
        if let configText {
            let doc: Value
            do { doc = try YAMLReader.load(configText) } catch { throw Invalid(description: "config: \(error)") }
            if let forward = doc["forward"], forward != .null {
                guard case .map(let entries) = forward else { throw Invalid(description: "forward: expected a mapping") }
                for e in entries where e.key != "mlflow" {
                    throw Invalid(description: "forward: unknown key '\(e.key)' (only mlflow)")
                }
                section = forward["mlflow"]
            }
        }
        func env(_ k: String) -> String? { environment[k].flatMap { $0.isEmpty ? nil : $0 } }
        func truthy(_ s: String?) -> Bool { ["1", "true", "yes", "on"].contains((s ?? "").lowercased()) }
        var s = ForwardSettings(trackingURI: env("MLFLOW_TRACKING_URI") ?? "")
        s.username = env("MLFLOW_TRACKING_USERNAME")
        s.password = env("MLFLOW_TRACKING_PASSWORD")
        s.token = env("MLFLOW_TRACKING_TOKEN")
        s.insecureTLS = truthy(env("MLFLOW_TRACKING_INSECURE_TLS"))
        s.serverCertPath = env("MLFLOW_TRACKING_SERVER_CERT_PATH")
        s.clientCertPath = env("MLFLOW_TRACKING_CLIENT_CERT_PATH")
        if let section, section != .null {
            guard case .map(let entries) = section else { throw Invalid(description: "forward.mlflow: expected a mapping") }
            for e in entries {
                let at = "forward.mlflow.\(e.key)"
                func string() throws(Invalid) -> String {
                    switch e.value {
                    case .string(let v): return v
                    case .int(let v): return String(v)
                    default: throw Invalid(description: "\(at): expected a string")
                    }
                }
                func strings() throws(Invalid) -> [String] {
                    if case .string(let v) = e.value { return [v] }
                    guard case .list(let items) = e.value else { throw Invalid(description: "\(at): expected a list of strings") }
                    var out: [String] = []
                    for item in items {
                        guard case .string(let v) = item else { throw Invalid(description: "\(at): expected a list of strings") }
                        out.append(v)
                    }
                    return out
                }
                func bool() throws(Invalid) -> Bool {
                    guard case .bool(let b) = e.value else { throw Invalid(description: "\(at): expected true or false") }
                    return b
                }
                switch e.key {
                case "tracking_uri": s.trackingURI = try string()
                case "username": s.username = try string()
                case "password": s.password = try string()
                case "token": s.token = try string()
                case "insecure_tls": s.insecureTLS = try bool()
                case "server_cert_path": s.serverCertPath = try string()
                case "client_cert_path": s.clientCertPath = try string()
                case "include_keys": s.includeKeys = try strings()
                case "exclude_keys": s.excludeKeys = try strings()
                case "experiments": s.experiments = try strings()
                case "artifacts": s.artifacts = try bool()
                case "ranks":
                    guard case .list(let items) = e.value else { throw Invalid(description: "\(at): expected a list of ranks") }
                    var out: [Int64] = []
                    for item in items {
                        guard case .int(let r) = item, r >= 0 else { throw Invalid(description: "\(at): expected a list of ranks") }
                        out.append(r)
                    }
                    s.ranks = out
                case "interval_ms":
                    guard case .int(let v) = e.value, (10...600_000).contains(v) else {
                        throw Invalid(description: "\(at): expected an integer from 10 to 600000")
                    }
                    s.intervalMs = Int(v)
                default:
                    throw Invalid(description: "\(at): unknown key")
                }
            }
        }
        if s.trackingURI.isEmpty { return nil }
        while s.trackingURI.hasSuffix("/") { s.trackingURI.removeLast() }
        guard s.trackingURI.hasPrefix("http://") || s.trackingURI.hasPrefix("https://") else {
            throw Invalid(
                description: "MLflow tracking URI '\(s.trackingURI)': logd forwards to an http:// or https:// tracking server only")
        }
        return s
    }

    /// Whether a mapped metric key and rank pass the filters.
    package func admits(key: String, rank: Int64) -> Bool {
        if let ranks, !ranks.contains(rank) { return false }
        if !includeKeys.isEmpty, !includeKeys.contains(where: { fnmatch($0, key, 0) == 0 }) { return false }
        if excludeKeys.contains(where: { fnmatch($0, key, 0) == 0 }) { return false }
        return true
    }

    /// The tracking URI without credentials, for logs and status.
    package var displayURI: String {
        guard let at = trackingURI.firstIndex(of: "@"), let scheme = trackingURI.firstRange(of: "://") else { return trackingURI }
        return String(trackingURI[..<scheme.upperBound]) + String(trackingURI[trackingURI.index(after: at)...])
    }
}
