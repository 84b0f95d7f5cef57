/// RFC 4180 CSV fields with LF line ends, as metrics.csv is written and logctl's tables are
/// printed: a field is quoted when it holds `,`, `"`, CR or LF, or starts or ends with a space;
/// an inner `"` is doubled.
public enum CSV {
    public static func field(_ s: String) -> String {
        String(decoding: fieldBytes(s), as: UTF8.self)
    }

    public static func fieldBytes(_ s: String) -> [UInt8] {
        let needsQuotes =
            s.utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
            || s.utf8.first == 0x20 || s.utf8.last == 0x20
        guard needsQuotes else { return Array(s.utf8) }
        var out: [UInt8] = [0x22]
        for b in s.utf8 {
            if b == 0x22 { out.append(0x22) }
            out.append(b)
        }
        out.append(0x22)
        return out
    }
}
