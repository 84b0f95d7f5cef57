// MLflow forwarding (docs/MLFLOW.md): on when MLFLOW_TRACKING_URI is set or the config file has a
// `forward: {mlflow: {tracking_uri: …}}` section. The forwarder runs on a thread of its own and
// reads only what the writer made durable; the daemon's loop and writer do not know it exists.
#if canImport(Glibc)
    import Glibc
#endif
import LogdCore
import LogdForward
import LogdSystem

/// The forwarding settings, nil when forwarding is off; a bad section is a config error (exit 2).
func forwardSettings(configPath: String?) throws(ConfigError) -> ForwardSettings? {
    let text = configPath.flatMap(readTextFile)
    do {
        return try ForwardSettings.resolve(configText: text, environment: LogdConfig.processEnvironment())
    } catch {
        throw ConfigError(message: "\(configPath.map { $0 + ": " } ?? "")\(error.description)")
    }
}

func startForwarding(_ settings: ForwardSettings?, dataRoot: String, log: DaemonLog) -> Forwarder? {
    guard let settings else {
        // Off: a status file left by an earlier logd that forwarded would show stale state.
        unlink(dataRoot + "/" + Forwarder.statusPath)
        return nil
    }
    let forwarder = Forwarder(settings: settings, dataRoot: dataRoot) { level, message in
        switch level {
        case .info: log.log(.info, message)
        case .warning: log.log(.warning, message)
        case .error: log.log(.error, message)
        }
    }
    forwarder.start()
    return forwarder
}
