import Wire
import LogdSystem

extension Record {
    /// A copy-mode ARTIFACT or MODEL_VERSION: it travels with one SCM_RIGHTS descriptor.
    var carriesDescriptor: Bool {
        switch self {
        case .artifact(let a): a.mode == .copy
        case .modelVersion(let m): m.mode == .copy
        default: false
        }
    }
}

/// Routing decoded records: handshake, numbering and de-duplication, runs and their ends.
/// Loop-confined, like the rest of `Server`.
extension Server {
    func handle(_ record: Record, on conn: Connection) {
        if case .hello(let hello) = record {
            guard conn.state == .awaitingHello else {
                return protocolError(conn, code: .protocolViolation, message: "second HELLO on one connection")
            }
            return greet(conn, hello)
        }
        switch conn.state {
        case .awaitingHello:
            protocolError(conn, code: .protocolViolation, message: "first frame must be HELLO, got kind \(record.kind)")
        case .control:
            guard case .controlRequest(let request) = record else {
                return protocolError(conn, code: .protocolViolation, message: "control connections send CONTROL_REQUEST only")
            }
            handleControl(request, on: conn)
        case .producer:
            // A copy-mode ARTIFACT / MODEL_VERSION takes the oldest descriptor passed on this
            // connection (it arrived with the frame's first byte, so it is already here).
            var fd: PassedFD?
            if record.carriesDescriptor {
                guard let next = conn.nextPassedFD() else {
                    return protocolError(
                        conn, code: .protocolViolation,
                        message: "copy-mode \(FrameKind(rawValue: record.kind)?.name ?? "") frame without a file descriptor (SCM_RIGHTS)")
                }
                fd = next
            }
            if record.isNumbered {
                numbered(record, fd: fd, on: conn)
            } else {
                connectionFrame(record, on: conn)
            }
        case .closed:
            break
        }
    }

    private func greet(_ conn: Connection, _ hello: Hello) {
        conn.hello = hello
        if hello.minor > WireProtocol.minorVersion { conn.decoder.skipUnknownKinds = true }
        switch hello.role {
        case .control:
            conn.state = .control
            send(.welcome(Welcome(durableThrough: 0, maxFrameBytes: UInt32(config.maxFrameBytes), daemonVersion: Server.version)), to: conn)
        case .producer:
            guard hello.firstSeq <= Server.maxSeq else {
                return protocolError(conn, code: .protocolViolation, message: "first_seq \(hello.firstSeq) is beyond 2^62")
            }
            if let runIndex = sessions[hello.session]?.run, let run = runs[runIndex], !mayUse(run, conn) {
                return protocolError(conn, code: .refused, message: "session belongs to a run of uid \(run.owner)")
            }
            conn.state = .producer
            conn.session = hello.session
            conn.nextSeq = hello.firstSeq
            let finished = finishedSessions[hello.session] ?? 0
            var state = sessions[hello.session] ?? SessionState(run: nil, received: finished, durable: finished)
            if let old = state.connection, old != conn.id, let previous = connections[old] {
                state.connection = nil
                sessions[hello.session] = state
                closeConnection(previous, reason: "session resumed on connection \(conn.id)")
                state = sessions[hello.session] ?? state
            }
            state.connection = conn.id
            conn.sessionState = state
            if let runIndex = state.run, let run = runs[runIndex] {
                conn.rank = rankOf(hello.session, in: run)
                if state.end == .vanished {
                    // A producer of a run marked crashed (or waiting for its producers) is back.
                    state.end = nil
                    if run.status != .running {
                        run.status = .running
                        enqueue(.reopen(run: runIndex))
                    }
                }
                run.graceDeadline = nil
            }
            sessions[hello.session] = state
            send(
                .welcome(Welcome(durableThrough: state.durable, maxFrameBytes: UInt32(config.maxFrameBytes), daemonVersion: Server.version)), to: conn
            )
        }
    }

    private func rankOf(_ session: SessionID, in run: RunState) -> Int32 { ranks[session] ?? 0 }

    /// A run belongs to the uid that created it; root may use any.
    func mayUse(_ run: RunState, _ conn: Connection) -> Bool { conn.peerUID == run.owner || conn.peerUID == 0 }

    /// A record refused by a limit or a value logd cannot honour: counted, logged once per
    /// kind, never written; the connection goes on.
    func refuse(_ conn: Connection, _ what: String) {
        refusedRecords += 1
        log.limited(.warning, key: "refused-\(what.prefix(16))", "connection \(conn.id) (pid \(conn.peerPID)): refused \(what)")
    }

    /// Frames that are not numbered: METRIC_KEY, FLUSH.
    private func connectionFrame(_ record: Record, on conn: Connection) {
        switch record {
        case .metricKey(let key):
            guard let session = conn.session, let runIndex = sessions[session]?.run, let run = runs[runIndex] else {
                // A producer resuming a session whose run already ended (it missed the last
                // acknowledgement) defines its keys again before resending: nothing to do.
                if let session = conn.session, let state = sessions[session], state.run == nil, state.received > 0 { return }
                return protocolError(conn, code: .protocolViolation, message: "METRIC_KEY before RUN_START")
            }
            // Key ids on one connection: the run's limit plus room for ids of refused keys.
            if conn.keyIndex(key.id) == nil, conn.definedKeys >= config.maxKeysPerRun + 65_536 {
                return protocolError(conn, code: .refused, message: "more than max_keys_per_run + 65536 key ids on one connection")
            }
            let name = KeyName(context: key.context, key: key.key, source: key.source, rank: conn.rank)
            if let index = run.keyIndex[name] {
                conn.setKey(key.id, index)
                return
            }
            let bytes = key.key.utf8.count + key.context.utf8.count + key.source.utf8.count
            guard run.keyIndex.count < config.maxKeysPerRun, run.keyBytes + bytes <= config.maxKeyBytesPerRun,
                totalKeys < config.maxKeysTotal
            else {
                conn.setKey(key.id, Server.refusedKey)
                return refuse(conn, "metric key '\(key.key.prefix(64))': max_keys_per_run, max_key_bytes_per_run or max_keys_total reached")
            }
            let index = allocateKeyIndex()
            run.keyIndex[name] = index
            run.keyBytes += bytes
            totalKeys += 1
            conn.setKey(key.id, index)
            enqueue(.defineKey(key: index, run: runIndex, key, rank: conn.rank))
        case .flush(let token):
            guard let session = conn.session else { return }
            markReceived(conn)
            newBarrier(.producer(connection: conn.id, token: token, session: session, through: sessions[session]?.received ?? 0), on: conn)
        case .drops(let total):
            guard let session = conn.session, let run = sessions[session]?.run else { return }
            guard total <= Server.maxCounter else { return refuse(conn, "DROPS total \(total) (beyond 2^53)") }
            sessions[session]?.dropped = total
            enqueue(.drops(run: run, session: session, total: total))
        case .unknown:
            break
        default:
            protocolError(conn, code: .protocolViolation, message: "unexpected frame kind \(record.kind) from a producer")
        }
    }

    /// `fd`: the descriptor a copy-mode frame carries; dropping it (a duplicate, an error)
    /// closes it.
    private func numbered(_ record: Record, fd: PassedFD?, on conn: Connection) {
        guard let session = conn.session, let state = sessions[session] else { return }
        let seq = conn.nextSeq
        guard seq < Server.maxSeq else {
            return protocolError(conn, code: .protocolViolation, message: "frame number beyond 2^62")
        }
        conn.nextSeq = seq + 1
        if seq <= state.received {
            // Already received before a reconnect or restart: never written twice — except a
            // copy whose descriptor a restart lost (a hole), which is taken again.
            guard state.holes.remove(seq) != nil else {
                duplicatesSkipped += 1
                return
            }
        } else {
            if seq != state.received + 1, state.received > 0 {
                log.limited(.warning, key: "gap", "session \(session): frames \(state.received + 1)…\(seq - 1) never arrived")
            }
            state.received = seq
        }
        sessions[session] = state
        conn.unmarkedSeq = true
        conn.records += 1
        totalRecords += 1

        if case .runStart(let start) = record {
            return startRun(start, conn: conn, session: session)
        }
        guard let runIndex = state.run, let run = runs[runIndex] else {
            return protocolError(conn, code: .protocolViolation, message: "data record before RUN_START")
        }
        run.records += 1
        switch record {
        case .metric(let m):
            guard let key = conn.keyIndex(m.keyID) else {
                return protocolError(conn, code: .protocolViolation, message: "metric key id \(m.keyID) was never defined")
            }
            if key == Server.refusedKey { return refuse(conn, "a metric of a refused key") }
            enqueueMetric(m, key: key)
        case .metricBatch(let ms):
            for m in ms {
                guard let key = conn.keyIndex(m.keyID) else {
                    return protocolError(conn, code: .protocolViolation, message: "metric key id \(m.keyID) was never defined")
                }
                if key == Server.refusedKey {
                    refuse(conn, "a metric of a refused key")
                    continue
                }
                enqueueMetric(m, key: key)
            }
            // The frame counted as one record above; a batch counts each of its metrics.
            totalRecords += UInt64(max(0, ms.count - 1))
            conn.records += UInt64(max(0, ms.count - 1))
            run.records += UInt64(max(0, ms.count - 1))
        case .log(let line):
            enqueue(.log(run: runIndex, rank: conn.rank, line))
        case .params(let value):
            // The limits apply to the merged config (later params overwrite earlier keys), which
            // only the writer holds: it refuses what would pass them (Writer.apply).
            enqueue(.params(run: runIndex, value, bytes: frameBytes))
        case .runEnd(let end):
            conn.sentRunEnd = true
            sessions[session]?.end = .sent(end.status)
            markReceived(conn)
            enqueue(.producerEnded(run: runIndex, session: session, .sent(end.status)))
            endRunIfDone(run)
        case .artifact, .modelInfo, .modelVersion, .dataset:
            if fd != nil { copiesInFlight += 1 }
            enqueue(.record(run: runIndex, session: session, seq: seq, record, fd))
        default:
            break  // .unknown numbered kinds from a newer minor version: counted, skipped
        }
    }

    private func startRun(_ start: RunStart, conn: Connection, session: SessionID) {
        var start = start
        guard start.startTime >= 0 else {
            return protocolError(conn, code: .protocolViolation, message: "RUN_START with a negative start time (\(start.startTime) ns)")
        }
        if start.startTime == 0 { start.startTime = Posix.realtimeNanos() }
        let run: RunState
        if let existing = runsByID[start.runID], existing.status == .running || existing.sessions.contains(session) {
            guard mayUse(existing, conn) else {
                return protocolError(conn, code: .refused, message: "run id \(start.runID) belongs to uid \(existing.owner)")
            }
            run = existing
        } else {
            run = RunState(index: allocateRunIndex(), runID: start.runID, experiment: start.experiment, name: start.name)
            run.owner = conn.peerUID
            runsByID[start.runID] = run
            runs[run.index] = run
        }
        if let previous = sessions[session]?.run, previous != run.index {
            runs[previous]?.sessions.remove(session)
            // Key ids name keys of the session's run: another run's keys are defined again.
            conn.forgetKeys()
        }
        run.sessions.insert(session)
        run.rankWaitDeadline = nil  // a rank joined: wait for every producer again
        run.worldSize = max(run.worldSize, Int(start.worldSize))
        sessions[session]?.run = run.index
        sessions[session]?.end = nil
        ranks[session] = start.rank
        conn.rank = start.rank
        conn.sentRunEnd = false
        if run.status != .running {
            run.status = .running
            enqueue(.reopen(run: run.index))
        }
        let info = ProducerInfo(
            session: session, pid: conn.peerPID, uid: conn.peerUID, clientName: conn.hello?.clientName ?? "",
            clientVersion: conn.hello?.clientVersion ?? "", start: start)
        enqueue(.join(run: run.index, info))
        markReceived(conn)
    }

    /// Tells the writer how far this connection's session has been handed over.
    func markReceived(_ conn: Connection) {
        guard conn.unmarkedSeq, let session = conn.session, let state = sessions[session], let run = state.run else { return }
        conn.unmarkedSeq = false
        enqueue(.mark(run: run, session: session, seq: state.received))
    }

    /// A producer's connection closed.
    func producerLeft(_ conn: Connection, _ session: SessionID) {
        guard let state = sessions[session], state.connection == conn.id else { return }
        state.connection = nil
        markReceived(conn)
        guard let runIndex = state.run, let run = runs[runIndex] else {
            sessions.removeValue(forKey: session)
            return
        }
        if state.end == nil {
            state.end = .vanished
            enqueue(.producerEnded(run: runIndex, session: session, .vanished))
        }
        sessions[session] = state
        endRunIfDone(run)
    }

    /// A run ends when every producer has sent RUN_END or gone.
    func endRunIfDone(_ run: RunState) {
        guard run.status == .running else { return }
        var ends: [ProducerEnd] = []
        for s in run.sessions {
            guard let state = sessions[s] else { continue }
            if state.connection != nil && state.end != .vanished {
                guard let end = state.end else {  // still logging
                    run.rankWaitDeadline = nil
                    return
                }
                ends.append(end)
            } else {
                if state.end == nil, run.graceDeadline != nil { return }  // may still come back after a restart
                ends.append(state.end ?? .vanished)
            }
        }
        if ends.count < run.worldSize, !ends.contains(.vanished) {
            // Other ranks have not joined this logd: they may start late, or log to another
            // node's logd (multi-node jobs), so wait rank_wait_s for them, then end.
            let now = Posix.monotonicNanos()
            if run.rankWaitDeadline == nil { run.rankWaitDeadline = now + Int64(config.rankWaitSeconds) * 1_000_000_000 }
            if let deadline = run.rankWaitDeadline, now < deadline { return }
        }
        run.rankWaitDeadline = nil
        let status: RunPhase
        if ends.contains(.vanished) {
            status = .crashed
        } else if ends.contains(.sent(.failed)) {
            status = .failed
        } else if ends.contains(.sent(.killed)) {
            status = .killed
        } else {
            status = .finished
        }
        run.status = status
        enqueue(.runEnded(run: run.index, status: status))
        if status != .crashed {
            // Finished runs are not resumable: forget them and their sessions.
            for s in run.sessions where sessions[s]?.run == run.index {
                if let state = sessions[s] { rememberFinished(s, state.received) }
                guard sessions[s]?.connection == nil else { continue }
                sessions.removeValue(forKey: s)
                ranks.removeValue(forKey: s)
            }
            runsByID.removeValue(forKey: run.runID)
            runs.removeValue(forKey: run.index)
            runsEpoch &+= 1
            totalKeys -= run.keyIndex.count
            // The writer forgets this run's keys at its end, which it takes before any key
            // defined after this point: the indices can be reused.
            freeKeyIndices += run.keyIndex.values
        }
    }

    func adoptRecovered(_ recovered: RecoveredRun) {
        let run = RunState(index: recovered.index, runID: recovered.runID, experiment: "", name: "")
        run.directory = recovered.directory
        run.owner = recovered.owner
        run.graceDeadline = Posix.monotonicNanos() + Int64(config.resumeGraceSeconds) * 1_000_000_000
        for (session, seq) in recovered.sessions {
            run.sessions.insert(session)
            if let rank = recovered.ranks[session] { ranks[session] = rank }
            sessions[session] = SessionState(
                run: run.index, received: max(seq, recovered.received[session] ?? seq), durable: seq, connection: nil, end: nil,
                holes: recovered.holes[session] ?? [])
        }
        runsByID[recovered.runID] = run
        runs[run.index] = run
        reserveRunIndex(after: recovered.index)
    }
}
