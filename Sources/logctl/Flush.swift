import ArgumentParser
import LogdRead
import LogdSystem
import Wire

struct Flush: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Return once everything logd received is written and fsynced.")

    @OptionGroup var daemon: DaemonOptions

    @Option(name: .customLong("run"), help: "Only this run (by run id); default: every run.")
    var runID: String?

    @Option(name: .long, help: "Seconds to wait before giving up (exit 1), 0 to 86400.")
    var timeout: Double = 10

    func validate() throws {
        guard timeout.isFinite, (0...86_400).contains(timeout) else {
            throw ValidationError("--timeout must be 0 … 86400 seconds (one day), got \(timeout)")
        }
    }

    func run() throws {
        let ms = Int64((timeout * 1000).rounded())
        var args: [(key: String, value: Value)] = [(key: "timeout_ms", value: .int(ms))]
        if let runID { args.append((key: "run_id", value: .string(runID))) }
        let reply = try daemon.connect().call(.flush, .map(args), timeoutMs: Int32(clamping: ms + 5_000))
        switch reply.status {
        case .ok:
            return
        case .timedOut:
            FileOutput.stderr("logctl: flush did not complete within \(timeout)s\n")
            throw ExitCode(LogctlExit.failed)
        default:
            let reason = StatusTable.str(reply.body["error"])
            FileOutput.stderr("logctl: flush failed: \(reason)\n")
            if reply.body["reason"] == .string("run_not_found") { throw ExitCode(LogctlExit.runNotFound) }
            throw ExitCode(LogctlExit.failed)
        }
    }
}
