import ArgumentParser
import LogdCore
import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// Exit codes documented in docs/CONTROL_PROTOCOL.md.
enum LogctlExit {
    static let failed: Int32 = 1
    static let usage: Int32 = 2
    static let daemonNotRunning: Int32 = 3
    static let runNotFound: Int32 = 4
}

@main
struct Logctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logctl",
        abstract: "Talk to logd: status and flush.",
        version: "logctl 0.1.0",
        subcommands: [Status.self, Flush.self])
}

/// Options every command shares.
struct DaemonOptions: ParsableArguments {
    @Option(name: .long, help: "logd's socket (default: $LOGD_SOCKET, else $XDG_RUNTIME_DIR/logd/logd.sock, else /tmp/logd-<uid>/logd.sock).")
    var socket: String?

    var path: String { socket ?? LogdConfig.defaultSocket(LogdConfig.processEnvironment()) }

    /// Connects, or exits 3 with one line saying which socket was tried and how to start logd.
    func connect() throws -> ControlClient {
        do {
            return try ControlClient(path: path)
        } catch WireSocket.Failure.daemonNotRunning(let p, let reason) {
            FileOutput.stderr("logctl: logd is not running on \(p) (\(reason)); start it with `logd --socket \(p)`\n")
            throw ExitCode(LogctlExit.daemonNotRunning)
        } catch {
            FileOutput.stderr("logctl: \(error)\n")
            throw ExitCode(LogctlExit.failed)
        }
    }
}

extension ControlClient {
    /// Sends a request, turning transport failures into logctl's exit codes.
    func call(_ verb: ControlVerb, _ arguments: Value = .map([]), timeoutMs: Int32) throws -> ControlReply {
        do {
            return try request(verb, arguments, timeoutMs: timeoutMs)
        } catch {
            FileOutput.stderr("logctl: \(error)\n")
            throw ExitCode(LogctlExit.failed)
        }
    }
}
