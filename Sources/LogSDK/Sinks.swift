import Wire

/// Collects every record a `Run` logs, decoded, in memory — for users' own tests.
/// Thread-safe.
public final class InMemorySink: @unchecked Sendable {
    private let lock = SDKLock()
    private var decoder = StreamDecoder(decoder: FrameDecoder(limits: WireLimits(maxFrameBytes: 1 << 30)))
    private var stored: [Record] = []

    public init() {}

    /// Every record received so far, in order (RUN_START first). Metrics travel in METRIC_BATCH
    /// frames; each sample is listed here as its own `.metric` record.
    public var records: [Record] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    /// Metric values logged for `key` (any context), in order.
    public func values(of key: String, keys table: [MetricKey]? = nil) -> [Double] {
        lock.lock()
        defer { lock.unlock() }
        return stored.compactMap { r -> Double? in
            if case .metric(let m) = r, let k = definedKeys[m.keyID], k.key == key { return m.value }
            return nil
        }
    }

    private var definedKeys: [UInt32: MetricKey] = [:]

    func define(_ keys: [MetricKey]) {
        lock.lock()
        for k in keys { definedKeys[k.id] = k }
        lock.unlock()
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        lock.lock()
        defer { lock.unlock() }
        decoder.feed(bytes)
        while let r = try? decoder.next() {
            if case .metricBatch(let ms) = r {
                stored.append(contentsOf: ms.lazy.map { Record.metric($0) })
            } else {
                stored.append(r)
            }
        }
    }
}

/// Where a run's records go.
public enum Sink: Sendable {
    /// The logd daemon on this socket (nil: `$LOGD_SOCKET`, else the daemon's default path).
    case daemon(socket: String? = nil)
    /// Decoded into this in-memory sink (for tests).
    case memory(InMemorySink)
    /// Nowhere: every call is accepted and discarded (logging switched off).
    case none
}
