#if canImport(Glibc)
    import Glibc
#endif
import LogdRead
import LogdSystem
import Wire

/// What of a run directory is durable: the writer's `.logd-checkpoint` names it (file positions
/// at the last durability point, docs/ARCHITECTURE.md). The forwarder reads only up to it, so it
/// never sends a row a crash could take back.
package struct Checkpoint: Equatable {
    /// Rotated metrics.csv segments (all durable) and the durable length of the one after them.
    package var metricsRotated: Int
    package var metricsSize: Int
    package var metricCount: UInt64
    /// A stamp of the file (size, mtime): unchanged stamp, unchanged checkpoint.
    package var stamp: String

    static let limits = WireLimits(maxFrameBytes: 1 << 30, maxTextBytes: 64 << 20, maxDepth: 256, maxCollectionCount: 1 << 26)

    package static func stamp(runDirectory: String) -> String? {
        var st = stat()
        guard stat(runDirectory + "/.logd-checkpoint", &st) == 0 else { return nil }
        return "\(st.st_size):\(st.st_mtim.tv_sec):\(st.st_mtim.tv_nsec):\(st.st_ino)"
    }

    package static func read(runDirectory: String) -> Checkpoint? {
        guard let stamp = stamp(runDirectory: runDirectory), let bytes = FS.read(runDirectory + "/.logd-checkpoint"),
            let records = try? FrameDecoder(limits: limits).decodeAll(bytes), case .params(let state)? = records.first,
            case .list(let m)? = state["metrics_csv"], m.count == 2, case .int(let rotated) = m[0], case .int(let size) = m[1],
            rotated >= 0, size >= 0, rotated < 1_000_000_000, size < (1 << 50)
        else { return nil }
        var count: UInt64 = 0
        if case .int(let n)? = state["metric_count"], n > 0 { count = UInt64(n) }
        return Checkpoint(metricsRotated: Int(rotated), metricsSize: Int(size), metricCount: count, stamp: stamp)
    }
}

/// One metrics.csv row.
package struct MetricRow {
    package var timeMs: Int64
    package var step: Int64
    package var context: String
    package var key: String
    package var value: Double
    package var rank: Int64
    package var source: String
}

/// Reads metrics.csv segments from a position up to the checkpoint. A position is
/// (segment number, byte offset): segment n ≥ 1 is `metrics.<n>.csv` once rotated, and the live
/// `metrics.csv` while it is segment `rotated + 1`.
package struct DurableMetrics {
    package let directory: String

    static func segmentName(_ n: Int) -> String {
        let digits = String(n)
        return "metrics." + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".csv"
    }

    /// Opens segment `n` as the checkpoint describes it; nil if it is missing.
    func open(_ n: Int, _ cp: Checkpoint) -> Int32? {
        if n <= cp.metricsRotated {
            let fd = Glibc.open(directory + "/" + Self.segmentName(n), O_RDONLY | O_CLOEXEC)
            return fd >= 0 ? fd : nil
        }
        // The segment after the rotated ones is the live file, unless the writer rotated it
        // since the checkpoint: open the live name first, then prefer the rotated name if it now
        // exists (a rename after our open keeps our descriptor on the same bytes).
        let live = Glibc.open(directory + "/metrics.csv", O_RDONLY | O_CLOEXEC)
        let rotated = Glibc.open(directory + "/" + Self.segmentName(n), O_RDONLY | O_CLOEXEC)
        if rotated >= 0 {
            if live >= 0 { close(live) }
            return rotated
        }
        return live >= 0 ? live : nil
    }

    /// The durable end of segment `n`.
    func end(_ n: Int, _ fd: Int32, _ cp: Checkpoint) -> Int {
        if n <= cp.metricsRotated {
            var st = stat()
            return fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        }
        return cp.metricsSize
    }

    /// Up to `maxBytes` of whole rows after `position`, each with the position just past it.
    /// Moves over finished segments. Returns an empty list when caught up with the checkpoint.
    package func rows(from position: (segment: Int, offset: Int), _ cp: Checkpoint, maxBytes: Int) -> (
        rows: [(row: MetricRow?, header: Bool, segment: Int, end: Int)], caughtUp: Bool
    ) {
        var seg = max(1, position.segment), off = max(0, position.offset)
        while seg <= cp.metricsRotated + 1 {
            guard let fd = open(seg, cp) else {
                // A rotated segment that is gone (deleted by hand): nothing to read there.
                if seg <= cp.metricsRotated {
                    seg += 1
                    off = 0
                    continue
                }
                return ([], true)
            }
            defer { close(fd) }
            let end = end(seg, fd, cp)
            if off >= end {
                if seg <= cp.metricsRotated {
                    seg += 1
                    off = 0
                    continue
                }
                return ([], true)
            }
            let want = min(end - off, maxBytes)
            var buf = [UInt8](repeating: 0, count: want)
            var got = 0
            while got < want {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, want - got, off_t(off + got)) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                got += n
            }
            var out: [(row: MetricRow?, header: Bool, segment: Int, end: Int)] = []
            let base = off
            MetricsCSV.forEachRecord(buf, count: got) { fields, endIndex in
                let isHeader = base == 0 && out.isEmpty && fields.first == Array("time".utf8)
                out.append((row: isHeader ? nil : DurableMetrics.row(fields), header: isHeader, segment: seg, end: base + endIndex))
            }
            if out.isEmpty {
                // A row longer than maxBytes: read it whole next time.
                if want < end - off { return rows(from: (seg, off), cp, maxBytes: maxBytes * 2) }
                return ([], true)
            }
            return (out, false)
        }
        return ([], true)
    }

    static func row(_ f: [[UInt8]]) -> MetricRow? {
        guard f.count >= 7, let nanos = ISOTime.parse(String(decoding: f[0], as: UTF8.self)),
            let value = MetricsCSV.double(f[4])
        else { return nil }
        let step = f[1].isEmpty ? 0 : (Int64(String(decoding: f[1], as: UTF8.self)) ?? 0)
        let rank = Int64(String(decoding: f[5], as: UTF8.self)) ?? 0
        return MetricRow(
            timeMs: nanos / 1_000_000, step: step, context: String(decoding: f[2], as: UTF8.self),
            key: String(decoding: f[3], as: UTF8.self), value: value, rank: rank, source: String(decoding: f[6], as: UTF8.self))
    }
}
