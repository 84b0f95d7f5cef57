extension Value {
    /// Renders the tree as JSON text (RFC 8259), keys in map order.
    ///
    /// Non-finite doubles have no JSON form: they render as the strings `"nan"`, `"inf"` and
    /// `"-inf"`. Finite doubles always carry a `.` or an exponent so a reader keeps them floats.
    public func jsonText(pretty: Bool = false) -> String {
        var out = ""
        writeJSON(to: &out, pretty: pretty, indent: 0)
        return out
    }

    private func writeJSON(to out: inout String, pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            if pretty {
                out += "\n"
                out += String(repeating: "  ", count: level)
            }
        }
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += Value.jsonNumber(d)
        case .string(let s): Value.writeJSONString(s, to: &out)
        case .list(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                newline(indent + 1)
                item.writeJSON(to: &out, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            out += "]"
        case .map(let entries):
            if entries.isEmpty {
                out += "{}"
                return
            }
            out += "{"
            for (i, entry) in entries.enumerated() {
                if i > 0 { out += "," }
                newline(indent + 1)
                Value.writeJSONString(entry.key, to: &out)
                out += pretty ? ": " : ":"
                entry.value.writeJSON(to: &out, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            out += "}"
        }
    }

    static func jsonNumber(_ d: Double) -> String {
        if d.isNaN { return "\"nan\"" }
        if d.isInfinite { return d < 0 ? "\"-inf\"" : "\"inf\"" }
        let s = d.description
        return s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? s : s + ".0"
    }

    static func writeJSONString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let h = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
