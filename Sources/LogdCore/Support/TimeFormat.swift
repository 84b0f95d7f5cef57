#if canImport(Glibc)
    import Glibc
#endif

/// Formats nanosecond timestamps as ISO-8601 UTC with milliseconds (`2026-11-22T22:40:01.123Z`),
/// caching the part up to the second: the writer formats millions of these.
struct ISOTimeFormatter {
    private var cachedSecond: Int64 = .min
    private var cachedPrefix: [UInt8] = []

    /// Appends the formatted time to `out`.
    mutating func append(_ nanos: Int64, to out: inout [UInt8]) {
        let second = nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
        if second != cachedSecond {
            cachedSecond = second
            cachedPrefix = Array(ISOTimeFormatter.secondText(second).utf8)
        }
        out.append(contentsOf: cachedPrefix)
        let ms = Int((nanos - second * 1_000_000_000) / 1_000_000)
        out.append(0x2E)
        out.append(UInt8(0x30 + ms / 100))
        out.append(UInt8(0x30 + ms / 10 % 10))
        out.append(UInt8(0x30 + ms % 10))
        out.append(0x5A)
    }

    static func secondText(_ second: Int64) -> String {
        var t = time_t(second)
        var tm = tm()
        gmtime_r(&t, &tm)
        return format(tm, dateTime: "T", time: ":")
    }

    /// `YYYY-MM-DD<dateTime>HH<time>MM<time>SS` from broken-down time.
    private static func format(_ tm: tm, dateTime: String, time: String) -> String {
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))\(dateTime)"
            + "\(pad(tm.tm_hour, 2))\(time)\(pad(tm.tm_min, 2))\(time)\(pad(tm.tm_sec, 2))"
    }

    /// The whole ISO-8601 text of one timestamp.
    static func string(_ nanos: Int64) -> String {
        var f = ISOTimeFormatter()
        var out: [UInt8] = []
        f.append(nanos, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYY-MM-DD_HH-MM-SS` in local time: the prefix of run directory names.
    static func directoryStamp(_ nanos: Int64) -> String {
        var t = time_t(nanos / 1_000_000_000)
        var tm = tm()
        localtime_r(&t, &tm)
        return format(tm, dateTime: "_", time: "-")
    }
}
