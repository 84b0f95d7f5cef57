// logd: the run-logging daemon. Builds the configuration and runs the server; the logic lives
// in LogdCore (docs/ARCHITECTURE.md).
import ArgumentParser
import LogdCore
import LogdForward

#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

struct Logd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logd",
        abstract: "A local run-logging daemon for model training.",
        discussion: """
            With no options logd runs with embedded defaults: socket $LOGD_SOCKET, else \
            $XDG_RUNTIME_DIR/logd/logd.sock, else /tmp/logd-<uid>/logd.sock; runs under \
            $LOGD_DATA_ROOT, else ~/.local/share/logd/runs. SIGTERM or SIGINT drains and exits 0.
            """,
        version: "logd 0.1.0")

    @Option(name: .long, help: "Unix socket path to listen on.")
    var socket: String?

    @Option(name: .long, help: "Directory that holds the run directories.")
    var dataRoot: String?

    @Option(name: .long, help: "YAML configuration file (see packaging/logd.yaml).")
    var config: String?

    @Option(name: .long, help: "Own messages at this level and above: debug, info, warning, error.")
    var logLevel: String?

    @Flag(name: .long, help: "Print the effective configuration and exit.")
    var printConfig = false

    func effectiveConfig() throws -> LogdConfig {
        var cfg = LogdConfig()
        if let path = config {
            guard let text = readTextFile(path) else {
                throw ValidationError("cannot read config file \(path)")
            }
            try cfg.apply(yaml: text, fileName: path)
        }
        if let socket { cfg.socket = socket }
        if let dataRoot { cfg.dataRoot = dataRoot }
        if let logLevel { cfg.logLevel = logLevel }
        try cfg.validate()
        return cfg
    }

    func run() throws {
        let cfg: LogdConfig
        let forward: ForwardSettings?
        do {
            cfg = try effectiveConfig()
            forward = try forwardSettings(configPath: config)
        } catch let e as ConfigError {
            FileOutput.stderr("logd: \(e.description)\n")
            throw ExitCode(2)
        }
        if printConfig {
            print(cfg.rendered(), terminator: "")
            return
        }
        signal(SIGPIPE, SIG_IGN)
        // A parent may have spawned us with signals blocked (thread pools do): SIGTERM must work.
        var all = sigset_t()
        sigfillset(&all)
        sigprocmask(SIG_UNBLOCK, &all, nil)
        let log = DaemonLog(level: cfg.logLevel)
        // A socket passed by systemd is reported (logctl status) by the path it is really bound to.
        let adopted = SystemdActivation.listenFD()
        var serverConfig = cfg
        if let fd = adopted, let path = SystemdActivation.boundPath(fd) { serverConfig.socket = path }
        let server: Server
        do {
            server = try Server(config: serverConfig, log: log, listenFD: adopted)
        } catch {
            FileOutput.stderr("logd: \(error)\n")
            throw ExitCode(1)
        }
        let forwarder = startForwarding(forward, dataRoot: serverConfig.dataRoot, log: log)
        server.run()
        forwarder?.stop()
    }
}

func readTextFile(_ path: String) -> String? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

Logd.main()
