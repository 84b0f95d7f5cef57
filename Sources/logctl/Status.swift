import ArgumentParser
import LogdRead
import LogdSystem
import Wire

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what the daemon is doing.")

    @OptionGroup var daemon: DaemonOptions

    @Flag(name: .long, help: "Print the status document as JSON (shape: docs/CONTROL_PROTOCOL.md).")
    var json = false

    @Flag(
        name: .long,
        help: "Print the counters in the OpenMetrics text format (Prometheus; e.g. node_exporter's textfile collector).")
    var openmetrics = false

    func run() throws {
        let reply = try daemon.connect().call(.status, timeoutMs: 10_000)
        guard reply.status == .ok else {
            FileOutput.stderr("logctl: status failed: \(reply.body["error"].map { "\($0)" } ?? reply.status.name)\n")
            throw ExitCode(LogctlExit.failed)
        }
        // MLflow forwarding (docs/MLFLOW.md): the forwarder's state file under the data root.
        var body = reply.body
        if case .string(let root)? = body["data_root"], let forwarding = ForwardState.status(dataRoot: root),
            case .map(var entries) = body
        {
            entries.append((key: "forwarding", value: forwarding))
            body = .map(entries)
        }
        if json {
            print(body.jsonText(pretty: true))
        } else if openmetrics {
            print(OpenMetrics.render(reply.body), terminator: "")
        } else {
            print(StatusTable.render(body), terminator: "")
        }
    }
}

/// The human-readable form of a status document.
enum StatusTable {
    static func int(_ v: Value?) -> Int64 { if case .int(let i)? = v { i } else { 0 } }
    static func str(_ v: Value?) -> String {
        switch v {
        case .string(let s)?: s
        case .int(let i)?: String(i)
        case .double(let d)?: String(format1(d))
        case .bool(let b)?: b ? "yes" : "no"
        default: "-"
        }
    }
    static func format1(_ d: Double) -> String {
        let scaled = (d * 10).rounded() / 10
        return scaled.description
    }
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024, u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(n) B" : "\(format1(v)) \(units[u])"
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    static func render(_ s: Value) -> String {
        let totals = s["totals"], writer = s["writer"]
        var out = ""
        out += "\(str(s["version"])), pid \(str(s["pid"])), up \(format1(uptime(s)))s\n"
        out += "socket     \(str(s["socket"]))\n"
        out += "data root  \(str(s["data_root"])) (\(bytes(int(s["disk_free_bytes"]))) free)\n"
        out += "records    \(str(totals?["records"])) received, \(format1(rate(totals))) /s, \(bytes(int(totals?["bytes"]))) in\n"
        out += "writer     queue \(bytes(int(writer?["queue_bytes"]))) of \(bytes(int(writer?["queue_limit_bytes"])))"
        out += ", backpressure \(str(writer?["backpressure"])), \(str(writer?["fsyncs"])) fsyncs\n"
        out += "errors     \(str(totals?["malformed_frames"])) malformed, \(str(totals?["connections_refused"])) refused, "
        out += "\(str(totals?["records_dropped"])) dropped by clients, \(str(totals?["records_refused"])) refused by limits, "
        out += "\(str(totals?["write_errors"])) write errors, \(str(writer?["quarantined"])) runs quarantined\n"
        if writer?["blocked"] == .bool(true) {
            out += "WRITES FAILING  \(str(writer?["last_write_error"])): new records are held; logd retries and resumes by itself\n"
        }
        if case .list(let conns)? = s["connections"], !conns.isEmpty {
            out += "\nconnections\n"
            out += table(
                ["ID", "ROLE", "PID", "UID", "CLIENT", "RUN", "RECORDS", "BYTES"],
                conns.map { c in
                    [
                        str(c["id"]), str(c["role"]), str(c["pid"]), str(c["uid"]), str(c["client"]) + " " + str(c["client_version"]),
                        str(c["run_id"]), str(c["records"]), bytes(int(c["bytes"])),
                    ]
                })
        }
        if case .list(let runs)? = s["runs"], !runs.isEmpty {
            out += "\nruns\n"
            out += table(
                ["RUN ID", "STATUS", "PRODUCERS", "RECORDS", "DIRECTORY"],
                runs.map { r in [str(r["run_id"]), str(r["status"]), str(r["producers"]), str(r["records"]), str(r["directory"])] })
        }
        if let f = s["forwarding"] {
            out += "\nforwarding to MLflow at \(str(f["tracking_uri"])): \(str(f["state"]))"
            out += f["last_error"].map { $0 == .null ? "" : " (\(str($0)))" } ?? ""
            out += "\n"
            if case .list(let runs)? = f["runs"], !runs.isEmpty {
                out += table(
                    ["RUN ID", "STATE", "MLFLOW RUN", "BEHIND", "REFUSED", "LAST ERROR"],
                    runs.map { r in
                        var refused = str(r["refused"])
                        if case .list(let names)? = r["refused_names"], let first = names.first { refused += " (\(str(first)))" }
                        return [
                            str(r["run_id"]), str(r["state"]), str(r["mlflow_run_id"]), str(r["behind"]), refused,
                            r["last_error"] == .null ? "-" : TextFormat.oneLine(str(r["last_error"])),
                        ]
                    })
            }
        }
        return out
    }

    static func uptime(_ s: Value) -> Double { if case .double(let d)? = s["uptime_s"] { d } else { 0 } }
    static func rate(_ t: Value?) -> Double { if case .double(let d)? = t?["records_per_s"] { d } else { 0 } }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// logd's status document as OpenMetrics text: counters end in `_total`, gauges are plain, one
/// `# TYPE` and `# HELP` line per family, `# EOF` last (https://openmetrics.io).
enum OpenMetrics {
    /// (name, type, help, path into the status document).
    static let families: [(String, String, String, [String])] = [
        ("logd_records", "counter", "Records received from producers.", ["totals", "records"]),
        ("logd_received_bytes", "counter", "Bytes read from client sockets.", ["totals", "bytes"]),
        ("logd_connections_accepted", "counter", "Client connections accepted.", ["totals", "connections_accepted"]),
        ("logd_connections_refused", "counter", "Client connections refused.", ["totals", "connections_refused"]),
        ("logd_malformed_frames", "counter", "Frames that failed to decode or broke the protocol.", ["totals", "malformed_frames"]),
        ("logd_records_dropped", "counter", "Records producers reported dropping (their buffer was full).", ["totals", "records_dropped"]),
        ("logd_records_refused", "counter", "Records logd refused by a limit.", ["totals", "records_refused"]),
        ("logd_duplicates_skipped", "counter", "Resent frames skipped because they were already written.", ["totals", "duplicates_skipped"]),
        ("logd_write_errors", "counter", "Failed writes under the data root.", ["totals", "write_errors"]),
        ("logd_records_written", "counter", "Records written by the writer thread.", ["writer", "records_written"]),
        ("logd_fsyncs", "counter", "fsync calls made.", ["writer", "fsyncs"]),
        ("logd_backpressure_pauses", "counter", "Times reading paused because the writer queue was full.", ["writer", "backpressure_pauses"]),
        ("logd_writer_queue_bytes", "gauge", "Bytes queued for the writer thread.", ["writer", "queue_bytes"]),
        ("logd_writer_queue_limit_bytes", "gauge", "writer_queue_bytes: where reading pauses.", ["writer", "queue_limit_bytes"]),
        ("logd_writes_blocked", "gauge", "1 while writes fail (disk full) and logd retries.", ["writer", "blocked"]),
        ("logd_runs_quarantined", "gauge", "Runs set aside at start-up.", ["writer", "quarantined"]),
        ("logd_partial_frame_bytes", "gauge", "Bytes of partially received frames held.", ["totals", "partial_frame_bytes"]),
        ("logd_disk_free_bytes", "gauge", "Free bytes on the data root's file system.", ["disk_free_bytes"]),
        ("logd_uptime_seconds", "gauge", "Seconds since logd started.", ["uptime_s"]),
    ]

    static func render(_ status: Value) -> String {
        var out = ""
        for (name, type, help, path) in families {
            var v: Value? = status
            for key in path { v = v?[key] }
            let number: String
            switch v {
            case .int(let i)?: number = String(i)
            case .double(let d)?: number = d.isFinite ? String(d) : "NaN"
            case .bool(let b)?: number = b ? "1" : "0"
            default: continue
            }
            out += "# TYPE \(name) \(type)\n# HELP \(name) \(help)\n"
            out += "\(name)\(type == "counter" ? "_total" : "") \(number)\n"
        }
        if case .list(let conns)? = status["connections"] {
            out += "# TYPE logd_connections gauge\n# HELP logd_connections Open client connections.\n"
            out += "logd_connections \(conns.count)\n"
        }
        if case .list(let runs)? = status["runs"] {
            out += "# TYPE logd_runs gauge\n# HELP logd_runs Runs logd has open, by status.\n"
            var byStatus: [String: Int] = [:]
            for r in runs { if case .string(let s)? = r["status"] { byStatus[s, default: 0] += 1 } }
            for phase in RunPhase.allCases where phase != .finished && phase != .failed && phase != .killed {
                out += "logd_runs{status=\"\(phase.rawValue)\"} \(byStatus[phase.rawValue] ?? 0)\n"
            }
        }
        return out + "# EOF\n"
    }
}
