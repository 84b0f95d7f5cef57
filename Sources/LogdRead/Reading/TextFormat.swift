#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// Text forms shared by logctl's reading commands: aligned tables, GitHub markdown, CSV,
/// numbers, durations, and config trees flattened to dotted keys.
public enum TextFormat {
    /// One line for a table cell: a line break is shown as `\n`, a tab as `\t`, another control
    /// character as `\u{…}` — a multi-line param value stays in its row.
    public static func oneLine(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F: out += "\\u{\(String(u.value, radix: 16))}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// Columns padded to their widest cell, two spaces apart, no trailing spaces.
    /// Columns in `rightAligned` are padded on the left (numbers). Cells are made one line.
    public static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        let header = header.map(oneLine)
        let rows = rows.map { $0.map(oneLine) }
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                parts.append(rightAligned.contains(i) ? pad + c : c + pad)
            }
            var s = Substring(parts.joined(separator: "  "))
            while s.last == " " { s = s.dropLast() }
            return String(s) + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    /// A GitHub-flavoured markdown table; `|` in cells is escaped, line breaks become spaces.
    public static func markdown(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        func cell(_ s: String) -> String {
            var out = ""
            for ch in s {
                switch ch {
                case "|": out += "\\|"
                case "\n", "\r", "\r\n": out += " "
                default: out.append(ch)
                }
            }
            return out.isEmpty ? " " : out
        }
        var out = "| " + header.map(cell).joined(separator: " | ") + " |\n"
        out +=
            "|" + header.indices.map { rightAligned.contains($0) ? " ---: " : " --- " }.joined(separator: "|") + "|\n"
        for row in rows { out += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        return out
    }

    /// RFC 4180 CSV with LF line ends: a field is quoted when it holds `,`, `"`, CR or LF, or
    /// starts or ends with a space; an inner `"` is doubled.
    public static func csv(_ header: [String], _ rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(csvField).joined(separator: ",") + "\n" }.joined()
    }

    public static func csvField(_ s: String) -> String { CSV.field(s) }

    /// Six significant digits (`%.6g`), `nan`, `inf`, `-inf`: for tables people read.
    public static func compact(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        var buf = [CChar](repeating: 0, count: 64)
        _ = withVaList([d]) { vsnprintf(&buf, buf.count, "%.6g", $0) }
        return FS.cText(buf)
    }

    /// The shortest text that reads back to the same double (`0.1`, `1e-05`, `3.0`), `nan`,
    /// `inf`, `-inf`: for CSV, which programs read.
    public static func exact(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        return d.description
    }

    /// A param value as one line: strings as they are, numbers, `true`/`false`, `null`, and
    /// lists or maps as JSON.
    public static func valueText(_ v: Value, compactNumbers: Bool = false) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): compactNumbers ? compact(d) : exact(d)
        case .string(let s): s
        case .list, .map: v.jsonText()
        }
    }

    /// `12.3s`, `3m05s`, `2h07m`, `3d04h`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        if seconds < 60 { return compactFixed(seconds) + "s" }
        let s = Int(seconds.rounded(.down))
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if s < 3600 { return "\(s / 60)m\(two(s % 60))s" }
        if s < 86400 { return "\(s / 3600)h\(two(s / 60 % 60))m" }
        return "\(s / 86400)d\(two(s / 3600 % 24))h"
    }

    private static func compactFixed(_ d: Double) -> String {
        let tenths = (d * 10).rounded() / 10
        return tenths.description
    }

    /// A config tree as dotted keys (`optimizer.lr`), in the tree's order. Maps nest; lists,
    /// scalars and empty maps are leaves.
    public static func flatten(_ v: Value, prefix: String = "") -> [(key: String, value: Value)] {
        guard case .map(let entries) = v, !entries.isEmpty || prefix.isEmpty else {
            return prefix.isEmpty ? [] : [(key: prefix, value: v)]
        }
        var out: [(key: String, value: Value)] = []
        for (k, item) in entries {
            let path = prefix.isEmpty ? k : prefix + "." + k
            if case .map(let m) = item, !m.isEmpty {
                out += flatten(item, prefix: path)
            } else {
                out.append((key: path, value: item))
            }
        }
        return out
    }
}
