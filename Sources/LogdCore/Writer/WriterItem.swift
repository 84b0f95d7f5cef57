import Wire
import LogdSystem

/// What the loop knows of a producer when it joins a run.
public struct ProducerInfo: Sendable {
    public var session: SessionID
    /// From SO_PEERCRED, never from the client's word.
    public var pid: Int32
    public var uid: UInt32
    public var clientName: String
    public var clientVersion: String
    public var start: RunStart
}

/// How one producer left its run.
public enum ProducerEnd: Sendable, Equatable {
    case sent(RunStatus)
    /// The connection closed without RUN_END.
    case vanished

    var phase: RunPhase {
        switch self {
        case .sent(let s): RunPhase(s)
        case .vanished: .crashed
        }
    }
}

/// One unit of work for the writer, made by the loop. Runs and metric keys are referred to by
/// small indices the loop allocates, so a metric item carries no strings.
enum WriterItem: Sendable {
    /// A producer joined the run (the first one opens its directory).
    // Rare, large payloads are boxed (indirect) so every queued item — most are metrics —
    // stays small: the queue's memory bound counts items by `weight`.
    indirect case join(run: Int32, ProducerInfo)
    /// A connection interned a metric key: CSV fragments are rendered once, here.
    indirect case defineKey(key: Int32, run: Int32, MetricKey, rank: Int32)
    /// Consecutive metrics; each `keyID` holds the writer's key index (the loop's
    /// `defineKey` index), not the wire's key id. Plain data: the writer walks them in place.
    case metrics([Metric])
    case log(run: Int32, rank: Int32, LogLine)
    /// `bytes`: the PARAMS frame's size (an upper bound of what it adds to the merged config).
    case params(run: Int32, Value, bytes: Int)
    /// Artifact, model and dataset records, kept for the run's snapshots. `seq` is the frame's
    /// number in its session; a copy-mode ARTIFACT / MODEL_VERSION carries its descriptor.
    indirect case record(run: Int32, session: SessionID, seq: UInt64, Record, PassedFD?)
    case drops(run: Int32, session: SessionID, total: UInt64)
    /// Everything of `session` through frame `seq` has been handed to the writer.
    case mark(run: Int32, session: SessionID, seq: UInt64)
    case producerEnded(run: Int32, session: SessionID, ProducerEnd)
    /// Every producer has ended (or vanished): `status` is the run's final word.
    case runEnded(run: Int32, status: RunPhase)
    /// A producer of an ended (crashed) run came back: reopen its files.
    case reopen(run: Int32)
    /// Reply once everything before this item is written and fsynced.
    case barrier(UInt64)
    /// Drain: write and fsync everything, close files, then stop the thread.
    case shutdown

    /// Rough bytes this item holds, for the queue's memory bound. Items that hold a whole
    /// client frame (params, records, a producer's identity) weigh at least that frame's bytes,
    /// so a flood of big PARAMS cannot hide behind a small fixed weight.
    func weight(frameBytes: Int) -> Int {
        switch self {
        case .metrics: MemoryLayout<WriterItem>.stride  // the metrics are counted as they are batched
        case .log(_, _, let l): MemoryLayout<WriterItem>.stride + 32 + l.message.utf8.count + l.logger.utf8.count
        case .params, .record, .join, .defineKey: max(512, 2 * frameBytes)
        default: 128
        }
    }
}

/// What the writer tells the loop, through the loop's one async door.
enum LoopEvent: Sendable {
    /// These sessions are durable through these frame numbers.
    case durable([(SessionID, UInt64)])
    case barrierDone(UInt64, error: String?)
    /// A run's end went to the finisher: these sessions' last acknowledgements are held, and
    /// a FLUSH_DONE of theirs waits for them (`Server.heldFlushes`).
    case runFinishing([SessionID])
    /// …and is finished: their acknowledgements are out (just before, as `.durable`).
    case runFinished([SessionID])
    /// A run's directory exists (path relative to the data root).
    case runOpened(run: Int32, directory: String)
    /// The writer took items off the queue: the loop may resume reading.
    case queueDrained
    /// The writer is done with this many passed descriptors (copied, or dropped).
    case copiesFinished(Int)
    /// The writer wrote and closed everything after `.shutdown`.
    case stopped
}

/// A run found unfinished at start-up, with each session's durable frame number.
public struct RecoveredRun: Sendable {
    public var index: Int32
    public var runID: String
    public var directory: String
    public var sessions: [(SessionID, UInt64)]
    /// Each session's highest frame number already in the files (at least its durable one).
    public var received: [SessionID: UInt64] = [:]
    /// Frames of each session to take again when resent: copies a restart interrupted.
    public var holes: [SessionID: Set<UInt64>] = [:]
    /// Each session's rank (from its RUN_START), so a resumed producer keeps it.
    public var ranks: [SessionID: Int32] = [:]
    /// The uid of the run's first producer: the run's owner.
    public var owner: UInt32 = 0
}
