#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// A metric's identity in a run: (context, key).
public struct MetricID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var context: String
    public var key: String
    public init(context: String, key: String) {
        self.context = context
        self.key = key
    }
    /// `context/key`.
    public var description: String { context + "/" + key }
    public static func < (a: MetricID, b: MetricID) -> Bool { (a.context, a.key) < (b.context, b.key) }
}

/// What summary.yaml holds per (context, key): the input of `show`, `runs` and `compare`.
/// `min` and `max` ignore NaN samples (nil when every sample was NaN).
public struct MetricStats: Equatable, Sendable {
    public var count: Int64 = 0
    public var firstStep: Int64?
    public var lastStep: Int64?
    public var last: Double?
    public var min: Double?
    public var max: Double?
    public init() {}

    public mutating func add(_ value: Double, step: Int64?) {
        count += 1
        if let step {
            if firstStep == nil { firstStep = step }
            lastStep = step
        }
        last = value
        if !value.isNaN {
            if min == nil || value < min! { min = value }
            if max == nil || value > max! { max = value }
        }
    }

    public static func == (a: MetricStats, b: MetricStats) -> Bool {
        func same(_ x: Double?, _ y: Double?) -> Bool {
            switch (x, y) {
            case (nil, nil): true
            case (let x?, let y?): x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN)
            default: false
            }
        }
        return a.count == b.count && a.firstStep == b.firstStep && a.lastStep == b.lastStep && same(a.last, b.last)
            && same(a.min, b.min) && same(a.max, b.max)
    }
}

/// Every sample of one (context, key), in file order (segments oldest first).
public struct MetricSeries: Sendable {
    public var id: MetricID
    /// Per sample: its step (nil when it had none) and value.
    public var steps: [Int64?] = []
    public var values: [Double] = []
    public var stats = MetricStats()

    /// The values ordered by step (samples without a step keep their place after the stepped
    /// ones; equal steps keep file order): what a sparkline draws.
    public func valuesByStep() -> [Double] {
        let order = steps.indices.sorted { a, b in
            switch (steps[a], steps[b]) {
            case (let x?, let y?): x != y ? x < y : a < b
            case (nil, nil): a < b
            case (_?, nil): true
            case (nil, _?): false
            }
        }
        return order.map { values[$0] }
    }
}

/// Reads a run's metrics: metrics.csv segments (RFC 4180) and summary.yaml.
public enum MetricsReader {
    /// Every series of the run, in order of first appearance. Reads every metrics.csv segment
    /// (oldest first, then the live file); each segment's header row is skipped, and an
    /// incomplete last row of a file (no line end yet: the run is live) is ignored.
    public static func series(_ run: RunDirectory) -> [MetricSeries] { parse(run).series }

    /// Every metrics.csv segment of the run through one parser: its series and per-source stats.
    public static func parse(_ run: RunDirectory) -> MetricsCSV {
        var parser = MetricsCSV()
        for path in run.segments(stem: "metrics", ext: "csv") {
            if let bytes = FS.read(path) { parser.feedSegment(bytes) }
        }
        return parser
    }

    /// Per (context, key) summaries: summary.yaml's when the run has one, else computed from
    /// metrics.csv. In summary.yaml's order (contexts, then keys, as first seen).
    public static func summaries(_ run: RunDirectory) -> [(id: MetricID, stats: MetricStats)] {
        if let doc = run.yaml("summary.yaml"), let parsed = summaries(fromSummaryYAML: doc) { return parsed }
        return series(run).map { (id: $0.id, stats: $0.stats) }
    }

    /// summary.yaml's `metrics` map: `{context: {key: {count, first_step, last_step, last, min, max}}}`;
    /// nil if the document has no such map.
    public static func summaries(fromSummaryYAML doc: Value) -> [(id: MetricID, stats: MetricStats)]? {
        guard case .map(let contexts)? = doc["metrics"] else { return nil }
        func int(_ v: Value?) -> Int64? { if case .int(let i)? = v { i } else { nil } }
        func dbl(_ v: Value?) -> Double? {
            switch v {
            case .double(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        var out: [(id: MetricID, stats: MetricStats)] = []
        for (context, keys) in contexts {
            guard case .map(let entries) = keys else { continue }
            for (key, s) in entries {
                var stats = MetricStats()
                stats.count = int(s["count"]) ?? 0
                stats.firstStep = int(s["first_step"])
                stats.lastStep = int(s["last_step"])
                stats.last = dbl(s["last"])
                stats.min = dbl(s["min"])
                stats.max = dbl(s["max"])
                out.append((id: MetricID(context: context, key: key), stats: stats))
            }
        }
        return out
    }

    /// A one-line chart of `values` in at most `width` cells (`▁▂▃▄▅▆▇█`): the values are cut
    /// into consecutive buckets of equal size and each cell shows its bucket's mean (NaN
    /// ignored; a bucket of only NaN is a space), scaled between the lowest and highest mean.
    public static func sparkline(_ values: [Double], width: Int = 40) -> String {
        let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        guard !values.isEmpty, width > 0 else { return "" }
        let cells = min(width, values.count)
        var means: [Double?] = []
        for c in 0..<cells {
            let lo = c * values.count / cells, hi = (c + 1) * values.count / cells
            var sum = 0.0, n = 0, posInf = false, negInf = false
            for v in values[lo..<hi] {
                if v.isNaN { continue }
                if v == .infinity {
                    posInf = true
                } else if v == -.infinity {
                    negInf = true
                } else {
                    sum += v
                    n += 1
                }
            }
            if posInf && !negInf {
                means.append(.infinity)
            } else if negInf && !posInf {
                means.append(-.infinity)
            } else {
                means.append(n > 0 ? sum / Double(n) : nil)
            }
        }
        let finite = means.compactMap { $0 }.filter(\.isFinite)
        let lo = finite.min() ?? 0, hi = finite.max() ?? 0
        var out = ""
        for m in means {
            guard let m else {
                out.append(" ")
                continue
            }
            if m == .infinity {
                out.append(bars[7])
            } else if m == -.infinity {
                out.append(bars[0])
            } else if hi > lo {
                let level = Int(((m - lo) / (hi - lo) * 7).rounded())
                out.append(bars[max(0, min(7, level))])
            } else {
                out.append(bars[3])
            }
        }
        return out
    }
}

/// An incremental reader of metrics.csv segments (RFC 4180: quoted fields may hold `,`, `"` as
/// `""`, CR and LF) into per-(context, key) series.
public struct MetricsCSV {
    public private(set) var series: [MetricSeries] = []
    private var index: [String: Int] = [:]
    /// Per (context, key): each `source` column value's own stats, in order of first appearance
    /// (per-parameter gradient norms share one key and differ by source).
    public private(set) var sourceStats: [MetricID: [(source: String, stats: MetricStats)]] = [:]
    private var sourceIndex: [MetricID: [String: Int]] = [:]
    public private(set) var rows = 0

    public init() {}

    /// Adds one whole segment: its first row is its header; a last row without a line end is
    /// left out.
    public mutating func feedSegment(_ bytes: [UInt8]) {
        var columns: [String: Int] = [:]
        var first = true
        MetricsCSV.forEachRecord(bytes) { fields in
            if first {
                first = false
                if fields.first.map({ String(decoding: $0, as: UTF8.self) }) == "time" {
                    for (i, f) in fields.enumerated() { columns[String(decoding: f, as: UTF8.self)] = i }
                    return
                }
            }
            addRow(fields, columns: columns)
        }
    }

    private mutating func addRow(_ fields: [[UInt8]], columns: [String: Int]) {
        let stepCol = columns["step"] ?? 1, contextCol = columns["context"] ?? 2, keyCol = columns["key"] ?? 3
        let valueCol = columns["value"] ?? 4, sourceCol = columns["source"] ?? 6
        guard fields.count > max(stepCol, contextCol, keyCol, valueCol) else { return }
        guard let value = MetricsCSV.double(fields[valueCol]) else { return }
        let step = MetricsCSV.int(fields[stepCol])
        let context = String(decoding: fields[contextCol], as: UTF8.self),
            key = String(decoding: fields[keyCol], as: UTF8.self)
        let k = context + "\u{0}" + key
        let i: Int
        if let existing = index[k] {
            i = existing
        } else {
            i = series.count
            index[k] = i
            series.append(MetricSeries(id: MetricID(context: context, key: key)))
        }
        series[i].steps.append(step)
        series[i].values.append(value)
        series[i].stats.add(value, step: step)
        let source = sourceCol < fields.count ? String(decoding: fields[sourceCol], as: UTF8.self) : ""
        let id = series[i].id
        if let j = sourceIndex[id]?[source] {
            sourceStats[id]![j].stats.add(value, step: step)
        } else {
            var stats = MetricStats()
            stats.add(value, step: step)
            sourceIndex[id, default: [:]][source] = sourceStats[id, default: []].count
            sourceStats[id, default: []].append((source: source, stats: stats))
        }
        rows += 1
    }

    /// Calls `body` with the fields of every complete record (blank lines left out).
    public static func forEachRecord(_ bytes: [UInt8], _ body: ([[UInt8]]) -> Void) {
        forEachRecord(bytes, count: bytes.count) { fields, _ in
            if !(fields.count == 1 && fields[0].isEmpty) { body(fields) }
        }
    }

    /// Calls `body` with the fields of every complete record (RFC 4180) among the first `n`
    /// bytes, and the index just past its line end (a reader that resumes from an offset).
    public static func forEachRecord(_ bytes: [UInt8], count n: Int, _ body: ([[UInt8]], Int) -> Void) {
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var inQuotes = false
        var i = 0
        while i < n {
            let b = bytes[i]
            if inQuotes {
                if b == 0x22 {
                    if i + 1 < n, bytes[i + 1] == 0x22 {
                        field.append(0x22)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(b)
                }
            } else {
                switch b {
                case 0x22: inQuotes = true
                case 0x2C:
                    fields.append(field)
                    field.removeAll(keepingCapacity: true)
                case 0x0A:
                    fields.append(field)
                    field.removeAll(keepingCapacity: true)
                    body(fields, i + 1)
                    fields.removeAll(keepingCapacity: true)
                case 0x0D:
                    if !(i + 1 < n && bytes[i + 1] == 0x0A) { field.append(b) }
                default: field.append(b)
                }
            }
            i += 1
        }
        // A record without its line end is incomplete: left out.
    }

    static func int(_ f: [UInt8]) -> Int64? {
        guard !f.isEmpty else { return nil }
        return Int64(String(decoding: f, as: UTF8.self))
    }

    /// `nan`, `-nan`, `inf`, `-inf`, or a decimal number.
    public static func double(_ f: [UInt8]) -> Double? {
        guard !f.isEmpty, f.count < 64 else { return nil }
        var buf = [CChar](repeating: 0, count: f.count + 1)
        for (i, b) in f.enumerated() { buf[i] = CChar(bitPattern: b) }
        return buf.withUnsafeMutableBufferPointer { p -> Double? in
            var end: UnsafeMutablePointer<CChar>?
            let d = strtod(p.baseAddress!, &end)
            guard let end, end - p.baseAddress! == f.count else { return nil }
            return d
        }
    }
}
