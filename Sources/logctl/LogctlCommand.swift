import ArgumentParser
import LogdRead
import LogdSystem
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
        abstract: "Talk to logd (status, flush) and read runs from disk (runs, show, compare, tail).",
        discussion: """
            status and flush talk to the daemon (--socket, $LOGD_SOCKET); runs, show, compare and tail read the run \
            directories alone, no daemon needed (--data-root, $LOGD_DATA_ROOT). Exit codes: 0 success, 1 failed, \
            2 usage, 3 logd not running, 4 run not found (docs/CONTROL_PROTOCOL.md §4, docs/LOGCTL.md).
            """,
        version: "logctl 0.1.0",
        subcommands: [Status.self, Flush.self, Runs.self, Show.self, Compare.self, Tail.self, Export.self])

    /// ArgumentParser's own main, except that a bad command line exits 2 (documented), not 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileOutput.stderr(fullMessage(for: error) + "\n")
                Glibc.exit(LogctlExit.usage)
            }
            exit(withError: error)
        }
    }
}

/// Options of the commands that read runs from disk.
struct DataRootOptions: ParsableArguments {
    @Option(
        name: .customLong("data-root"),
        help:
            "Where the run directories are (default: $LOGD_DATA_ROOT, else $XDG_DATA_HOME/logd/runs, else ~/.local/share/logd/runs)."
    )
    var dataRoot: String?

    var path: String { dataRoot ?? DefaultPaths.dataRoot(DefaultPaths.environment()) }

    /// The run `name` names (run id, id prefix, folder, run name or path), or exit 4 with one line.
    func run(_ name: String) throws -> RunDirectory {
        do {
            return try RunCatalog.find(name, root: path)
        } catch {
            FileOutput.stderr("logctl: \(error)\n")
            throw ExitCode(LogctlExit.runNotFound)
        }
    }
}

/// Writes bytes to stdout (unbuffered, whole).
func writeOut(_ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
}

func writeOut(_ text: String) { writeOut(Array(text.utf8)) }

/// Options every command shares.
struct DaemonOptions: ParsableArguments {
    @Option(name: .long, help: "logd's socket (default: $LOGD_SOCKET, else $XDG_RUNTIME_DIR/logd/logd.sock, else /tmp/logd-<uid>/logd.sock).")
    var socket: String?

    var path: String { socket ?? DefaultPaths.socket(DefaultPaths.environment()) }

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
