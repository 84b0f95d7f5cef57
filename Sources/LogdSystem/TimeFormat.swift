#if canImport(Glibc)
    import Glibc
#endif

/// Formats nanosecond timestamps as ISO-8601 UTC with milliseconds (`2026-11-22T22:40:01.123Z`),
/// caching the part up to the second: the writer formats millions of these.
package struct ISOTimeFormatter {
    private var cachedSecond: Int64 = .min
    private var cachedPrefix: [UInt8] = []

    package init() {}

    /// Appends the formatted time to `out`.
    /// Total over every `Int64`: any time a client sends formats without trapping (times
    /// before 1970 are floored to their second; years outside gmtime's range print as 0000).
    package mutating func append(_ nanos: Int64, to out: inout [UInt8]) {
        let (q, r) = nanos.quotientAndRemainder(dividingBy: 1_000_000_000)
        // Floor division: q - 1 cannot overflow (|q| ≤ Int64.max / 10⁹).
        let second = r < 0 ? q - 1 : q
        let subsecond = r < 0 ? r + 1_000_000_000 : r
        if second != cachedSecond {
            cachedSecond = second
            cachedPrefix = Array(ISOTimeFormatter.secondText(second).utf8)
        }
        out.append(contentsOf: cachedPrefix)
        let ms = Int(subsecond / 1_000_000)
        out.append(0x2E)
        out.append(UInt8(0x30 + ms / 100))
        out.append(UInt8(0x30 + ms / 10 % 10))
        out.append(UInt8(0x30 + ms % 10))
        out.append(0x5A)
    }

    package static func secondText(_ second: Int64) -> String {
        var t = time_t(second)
        var tm = tm()
        if gmtime_r(&t, &tm) == nil { tm = Glibc.tm() }
        return format(tm, dateTime: "T", time: ":")
    }

    /// `YYYY-MM-DD<dateTime>HH<time>MM<time>SS` from broken-down time.
    private static func format(_ tm: tm, dateTime: String, time: String) -> String {
        func pad(_ v: Int, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        let year = tm.tm_mday == 0 ? 0 : Int(tm.tm_year) + 1900  // all zero: gmtime failed
        return "\(pad(year, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))\(dateTime)"
            + "\(pad(Int(tm.tm_hour), 2))\(time)\(pad(Int(tm.tm_min), 2))\(time)\(pad(Int(tm.tm_sec), 2))"
    }

    /// The whole ISO-8601 text of one timestamp.
    package static func string(_ nanos: Int64) -> String {
        var f = ISOTimeFormatter()
        var out: [UInt8] = []
        f.append(nanos, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYY-MM-DD_HH-MM-SS` in local time: the prefix of run directory names.
    package static func directoryStamp(_ nanos: Int64) -> String {
        var t = time_t(nanos / 1_000_000_000)
        var tm = tm()
        if localtime_r(&t, &tm) == nil { tm = Glibc.tm() }
        return format(tm, dateTime: "_", time: "-")
    }
}
