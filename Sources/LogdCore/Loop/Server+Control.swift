#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// The control verbs (docs/CONTROL_PROTOCOL.md). Loop-confined: status is built from the loop's
/// own counters and the writer's thread-safe stats, with no file I/O.
extension Server {
    /// The longest flush a control client may ask for: its deadline in ns stays far from overflow.
    static let maxFlushTimeoutMs: Int64 = 86_400_000

    func handleControl(_ request: ControlRequest, on conn: Connection) {
        guard let verb = ControlVerb(rawValue: request.verb) else {
            let body: Value = ["error": .string("unknown verb \(request.verb)")]
            return send(.controlReply(ControlReply(requestID: request.requestID, status: .unknownVerb, body: body)), to: conn)
        }
        func badRequest(_ why: String) {
            send(.controlReply(ControlReply(requestID: request.requestID, status: .badRequest, body: ["error": .string(why)])), to: conn)
        }
        switch request.arguments {
        case .map, .null: break
        default: return badRequest("arguments must be a map")
        }
        switch verb {
        case .status:
            send(.controlReply(ControlReply(requestID: request.requestID, status: .ok, body: status())), to: conn)
        case .flush:
            var timeoutMs: Int64 = 10_000
            if case .int(let t)? = request.arguments["timeout_ms"] {
                guard (0...Server.maxFlushTimeoutMs).contains(t) else {
                    return badRequest("timeout_ms must be 0 … \(Server.maxFlushTimeoutMs) (one day)")
                }
                timeoutMs = t
            } else if request.arguments["timeout_ms"] != nil {
                return badRequest("timeout_ms must be an integer")
            }
            if let runArg = request.arguments["run_id"] {
                guard case .string(let runID) = runArg else {
                    let body: Value = ["error": "run_id must be a string"]
                    return send(.controlReply(ControlReply(requestID: request.requestID, status: .badRequest, body: body)), to: conn)
                }
                guard runsByID[runID] != nil else {
                    let body: Value = ["error": .string("no active run with id \(runID)"), "reason": "run_not_found"]
                    return send(.controlReply(ControlReply(requestID: request.requestID, status: .failed, body: body)), to: conn)
                }
            }
            // Everything received before this request is already decoded and queued ahead of the
            // barrier (frames are decoded as they arrive), so the barrier covers every run.
            let deadline = Posix.monotonicNanos() + timeoutMs * 1_000_000
            newBarrier(.control(connection: conn.id, requestID: request.requestID, deadline: deadline, recordsAtRequest: totalRecords), on: conn)
        }
    }

    func status() -> Value {
        let stats = writer.currentStats
        let queued = writer.queuedBytes
        let connectionList: [Value] = connections.values.sorted { $0.id < $1.id }.map { c in
            let runID: Value = c.session.flatMap { sessions[$0]?.run }.flatMap { runs[$0] }.map { .string($0.runID) } ?? .null
            return [
                "id": .int(Int64(c.id)),
                "role": .string(c.state == .control ? "control" : c.state == .producer ? "producer" : "pending"),
                "pid": .int(Int64(c.peerPID)), "uid": .int(Int64(c.peerUID)),
                "client": .string(c.hello?.clientName ?? ""), "client_version": .string(c.hello?.clientVersion ?? ""),
                "session": .string((c.session ?? .zero).description), "run_id": runID,
                "records": .int(Int64(clamping: c.records)), "bytes": .int(Int64(clamping: c.bytesIn)),
            ]
        }
        let runList: [Value] = runs.values.sorted { $0.index < $1.index }.map { r in
            let producers = r.sessions.filter { sessions[$0]?.connection != nil }.count
            return [
                "run_id": .string(r.runID), "experiment": .string(r.experiment), "name": .string(r.name),
                "directory": r.directory.map(Value.string) ?? .null,
                "producers": .int(Int64(producers)), "records": .int(Int64(clamping: r.records)),
                "status": .string(r.status.rawValue),
            ]
        }
        // Each term is at most 2^53 (DROPS beyond it are refused); the sum saturates anyway.
        let dropped = sessions.values.reduce(UInt64(0)) { $0.addingReportingOverflow($1.dropped).overflow ? .max : $0 + $1.dropped }
        return [
            "version": .string(Server.version),
            "pid": .int(Int64(getpid())),
            "uptime_s": .double(Double(Posix.monotonicNanos() - startedAt) / 1e9),
            "socket": .string(config.socket),
            "data_root": .string(config.dataRoot),
            "disk_free_bytes": .int(stats.diskFreeBytes),
            "connections": .list(connectionList),
            "runs": .list(runList),
            "totals": [
                "records": .int(Int64(clamping: totalRecords)), "bytes": .int(Int64(clamping: totalBytes)),
                "records_per_s": .double(rate), "connections_accepted": .int(Int64(accepted)),
                "connections_refused": .int(Int64(refused)), "malformed_frames": .int(Int64(malformed)),
                "records_dropped": .int(Int64(clamping: dropped)), "write_errors": .int(Int64(stats.writeErrors)),
                "duplicates_skipped": .int(Int64(clamping: duplicatesSkipped)),
                "records_refused": .int(Int64(clamping: refusedRecords &+ stats.refusedRecords)),
                "partial_frame_bytes": .int(Int64(partialFrameBytes)),
            ],
            "writer": [
                "queue_bytes": .int(Int64(queued)), "queue_limit_bytes": .int(Int64(config.writerQueueBytes)),
                "backpressure": .bool(readingPaused), "backpressure_pauses": .int(Int64(backpressurePauses)),
                "batches_written": .int(Int64(stats.batchesWritten)),
                "fsyncs": .int(Int64(stats.fsyncs)), "records_written": .int(Int64(clamping: stats.recordsWritten)),
                "blocked": .bool(stats.blocked), "last_write_error": stats.lastWriteError.isEmpty ? .null : .string(stats.lastWriteError),
                "quarantined": .int(Int64(stats.quarantined)),
            ],
        ]
    }
}
