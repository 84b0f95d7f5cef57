import CYAML
import Wire
import LogdSystem

/// Loads YAML documents (run.yaml, config.yaml, summary.yaml, or any YAML a person wrote) into
/// value trees with libyaml's parser, resolving scalars the way PyYAML's `yaml.safe_load` does
/// (YAML 1.1):
///
/// - plain `~`, `null`, `Null`, `NULL` and the empty scalar are `.null`;
/// - plain `true/false`, `yes/no`, `on/off` (lower, Capitalized or UPPER case) are `.bool`
///   (`y` and `n` stay strings, as in PyYAML);
/// - plain integers are `.int`: decimal, `0x…` hex, `0b…` binary, `0…` octal (`017` is 15),
///   `_` separators, base-60 (`1:30` is 90); `0o17` is a YAML 1.2 spelling PyYAML leaves a string;
///   an integer beyond 64 bits becomes a `.double`;
/// - plain floats are `.double`: they need a `.` (`1.0`, `1.`, `.5`, `1.0e-05`, `1.0e+5`; `1e5`
///   stays a string, as in PyYAML), `.inf`, `-.inf`, `+.inf`, `.nan`, base-60 (`1:30.5`);
/// - everything else, and every quoted, literal or folded scalar, is a `.string` (timestamps
///   too: a value tree has no date type).
///
/// Explicit tags `!!str`, `!!int`, `!!float`, `!!bool` and `!!null` are honoured; the non-specific
/// `!` resolves like a plain scalar (as PyYAML does, even when quoted); other tags are ignored. Anchors, aliases and merge keys (`<<`) work as in PyYAML.
/// Map keys become strings (a non-scalar key is written as JSON); a repeated key keeps its first
/// position and its last value. Only the first document of a stream is read.
public enum YAMLReader {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var line: Int
        public var column: Int
        public var description: String { line > 0 ? "line \(line), column \(column): \(message)" : message }
    }

    /// The first document of `text` (`.null` for an empty stream).
    public static func load(_ text: String) throws(Failure) -> Value {
        try load(bytes: Array(text.utf8))
    }

    /// The first document of a file's contents (`.null` for an empty stream).
    public static func load(bytes: [UInt8]) throws(Failure) -> Value {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw Failure(message: "libyaml init failed", line: 0, column: 0)
        }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { buf throws(Failure) -> Value in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            var builder = Builder()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    throw Failure(
                        message: problem, line: Int(parser.problem_mark.line) + 1,
                        column: Int(parser.problem_mark.column) + 1)
                }
                defer { yaml_event_delete(&event) }
                let done = try builder.handle(&event)
                if done { return builder.result ?? .null }
            }
        }
    }

    // MARK: scalar resolution (PyYAML's implicit resolvers and constructors)

    private static let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
    private static let trues: Set<String> = ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]
    private static let falses: Set<String> = ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]

    /// What a plain (unquoted, untagged) scalar means.
    public static func resolvePlain(_ s: String) -> Value {
        if nulls.contains(s) { return .null }
        if trues.contains(s) { return .bool(true) }
        if falses.contains(s) { return .bool(false) }
        if let v = integer(s) { return v }
        if let d = float(s) { return .double(d) }
        return .string(s)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
    static func integer(_ s: String) -> Value? {
        var b = Array(s.utf8)
        guard !b.isEmpty else { return nil }
        var negative = false
        if b[0] == 0x2D || b[0] == 0x2B {
            negative = b[0] == 0x2D
            b.removeFirst()
        }
        guard let first = b.first, isDigit(first) else { return nil }
        func make(_ digits: [UInt8], radix: Int) -> Value? {
            let clean = digits.filter { $0 != 0x5F }
            guard !clean.isEmpty else { return .int(0) }  // e.g. `0_`: PyYAML's int('0', 8)
            let text = String(decoding: clean, as: UTF8.self)
            if let v = Int64(text, radix: radix) {
                return .int(negative ? -v : v)
            }
            // Beyond 64 bits: the nearest double (PyYAML would give a big int).
            var d = 0.0
            for c in clean {
                let digit: Int
                switch c {
                case 0x30...0x39: digit = Int(c) - 0x30
                case 0x61...0x66: digit = Int(c) - 0x61 + 10
                case 0x41...0x46: digit = Int(c) - 0x41 + 10
                default: return nil
                }
                d = d * Double(radix) + Double(digit)
            }
            return .double(negative ? -d : d)
        }
        if b.count >= 2, b[0] == 0x30, b[1] == 0x62 {  // 0b
            let rest = Array(b[2...])
            guard !rest.isEmpty, rest.allSatisfy({ $0 == 0x30 || $0 == 0x31 || $0 == 0x5F }) else { return nil }
            return make(rest, radix: 2)
        }
        if b.count >= 2, b[0] == 0x30, b[1] == 0x78 {  // 0x
            let rest = Array(b[2...])
            let hex: (UInt8) -> Bool = {
                isDigit($0) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) || $0 == 0x5F
            }
            guard !rest.isEmpty, rest.allSatisfy(hex) else { return nil }
            return make(rest, radix: 16)
        }
        if b == [0x30] { return .int(0) }
        if b[0] == 0x30 {  // octal
            let rest = Array(b[1...])
            guard rest.allSatisfy({ ($0 >= 0x30 && $0 <= 0x37) || $0 == 0x5F }) else { return nil }
            return make(rest, radix: 8)
        }
        if b.allSatisfy({ isDigit($0) || $0 == 0x5F }) { return make(b, radix: 10) }
        // Base 60: [1-9][0-9_]*(:[0-5]?[0-9])+
        let parts = b.split(separator: 0x3A, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].allSatisfy({ isDigit($0) || $0 == 0x5F }) else { return nil }
        for p in parts.dropFirst() where !sexagesimalDigits(p) { return nil }
        var total: Int64 = 0
        for p in parts {
            guard let v = Int64(String(decoding: p.filter { $0 != 0x5F }, as: UTF8.self)) else { return nil }
            let (m, o1) = total.multipliedReportingOverflow(by: 60)
            let (t, o2) = m.addingReportingOverflow(v)
            if o1 || o2 { return nil }
            total = t
        }
        return .int(negative ? -total : total)
    }

    /// `[0-5]?[0-9]`
    private static func sexagesimalDigits(_ p: ArraySlice<UInt8>) -> Bool {
        switch p.count {
        case 1: return isDigit(p[p.startIndex])
        case 2: return p[p.startIndex] >= 0x30 && p[p.startIndex] <= 0x35 && isDigit(p[p.startIndex + 1])
        default: return false
        }
    }

    /// `[-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)? | \.[0-9][0-9_]*([eE][-+][0-9]+)?
    ///  | [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
    static func float(_ s: String) -> Double? {
        if [".nan", ".NaN", ".NAN"].contains(s) { return .nan }
        var b = Array(s.utf8)
        guard !b.isEmpty else { return nil }
        var negative = false
        var signed = false
        if b[0] == 0x2D || b[0] == 0x2B {
            negative = b[0] == 0x2D
            signed = true
            b.removeFirst()
        }
        let rest = String(decoding: b, as: UTF8.self)
        if [".inf", ".Inf", ".INF"].contains(rest) { return negative ? -.infinity : .infinity }
        guard let first = b.first else { return nil }
        if first == 0x2E {
            // `.5`: no sign allowed by PyYAML's pattern.
            guard !signed, b.count >= 2, isDigit(b[1]) else { return nil }
            return decimalFloat(b, negative: false)
        }
        guard isDigit(first) else { return nil }
        if b.contains(0x3A) {
            // Base 60 with a fraction: [0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
            guard let dot = b.firstIndex(of: 0x2E) else { return nil }
            let whole = b[..<dot], fraction = b[(dot + 1)...]
            guard fraction.allSatisfy({ isDigit($0) || $0 == 0x5F }) else { return nil }
            let parts = whole.split(separator: 0x3A, omittingEmptySubsequences: false)
            guard parts.count >= 2, !parts[0].isEmpty, parts[0].allSatisfy({ isDigit($0) || $0 == 0x5F }) else {
                return nil
            }
            for p in parts.dropFirst() where !sexagesimalDigits(p) { return nil }
            // As PyYAML adds them: least significant part first.
            var total = 0.0, base = 1.0
            for (i, p) in parts.enumerated().reversed() {
                var text = String(decoding: p.filter { $0 != 0x5F }, as: UTF8.self)
                if i == parts.count - 1 {
                    text += "." + String(decoding: fraction.filter { $0 != 0x5F }, as: UTF8.self) + "0"
                }
                guard let v = Double(text) else { return nil }
                total += v * base
                base *= 60
            }
            return negative ? -total : total
        }
        return decimalFloat(b, negative: negative)
    }

    /// `[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` or `\.[0-9][0-9_]*([eE][-+][0-9]+)?` (sign removed).
    private static func decimalFloat(_ b: [UInt8], negative: Bool) -> Double? {
        var i = 0
        var mantissa: [UInt8] = []
        while i < b.count, isDigit(b[i]) || b[i] == 0x5F {
            if b[i] != 0x5F { mantissa.append(b[i]) }
            i += 1
        }
        guard i < b.count, b[i] == 0x2E else { return nil }
        if mantissa.isEmpty { mantissa.append(0x30) }
        mantissa.append(0x2E)
        i += 1
        var fractionDigits = 0
        while i < b.count, isDigit(b[i]) || b[i] == 0x5F {
            if b[i] != 0x5F {
                mantissa.append(b[i])
                fractionDigits += 1
            }
            i += 1
        }
        if fractionDigits == 0 { mantissa.append(0x30) }
        if i < b.count {
            guard b[i] == 0x65 || b[i] == 0x45, i + 2 < b.count, b[i + 1] == 0x2D || b[i + 1] == 0x2B else {
                return nil
            }
            let exponent = b[(i + 2)...]
            guard exponent.allSatisfy(isDigit) else { return nil }
            mantissa.append(0x65)
            mantissa.append(b[i + 1])
            mantissa.append(contentsOf: exponent)
        }
        guard let d = Double(String(decoding: mantissa, as: UTF8.self)) else { return nil }
        return negative ? -d : d
    }

    static func scalar(_ text: String, tag: String?, plain: Bool) throws(Failure) -> Value {
        guard let tag else { return plain ? resolvePlain(text) : .string(text) }
        func bad(_ what: String) -> Failure { Failure(message: "'\(text)' is not \(what)", line: 0, column: 0) }
        switch tag {
        case "!": return resolvePlain(text)  // PyYAML resolves the non-specific tag like a plain scalar
        case "tag:yaml.org,2002:str": return .string(text)
        case "tag:yaml.org,2002:null": return .null
        case "tag:yaml.org,2002:bool":
            if trues.contains(text) { return .bool(true) }
            if falses.contains(text) { return .bool(false) }
            throw bad("a bool")
        case "tag:yaml.org,2002:int":
            guard let v = integer(text) else { throw bad("an int") }
            return v
        case "tag:yaml.org,2002:float":
            if let d = float(text) { return .double(d) }
            if case .int(let i)? = integer(text) { return .double(Double(i)) }
            if case .double(let d)? = integer(text) { return .double(d) }
            throw bad("a float")
        default:
            return plain ? resolvePlain(text) : .string(text)
        }
    }

    // MARK: building the tree from events

    private struct Builder {
        enum Frame {
            case list(items: [Value], anchor: String?)
            /// `isMerge`: the key was a plain `<<`.
            case map(
                entries: [(key: String, value: Value, isMerge: Bool)], key: (text: String, isMerge: Bool)?,
                anchor: String?)
        }
        var stack: [Frame] = []
        var anchors: [String: Value] = [:]
        var result: Value?
        var documentDone = false

        static func text(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            guard let p else { return nil }
            return String(cString: UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
        }

        /// Returns true once the first document is complete (or the stream ended).
        mutating func handle(_ event: inout yaml_event_t) throws(Failure) -> Bool {
            let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return true
            case YAML_DOCUMENT_END_EVENT:
                return true
            case YAML_SCALAR_EVENT:
                let s = event.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                let plain = s.style == YAML_PLAIN_SCALAR_STYLE
                let value: Value
                do {
                    value = try YAMLReader.scalar(text, tag: Self.text(s.tag), plain: plain)
                } catch {
                    throw Failure(message: error.message, line: line, column: column)
                }
                if let anchor = Self.text(s.anchor) { anchors[anchor] = value }
                try add(
                    value, keyText: text, isMerge: plain && s.tag == nil && text == "<<", line: line, column: column)
            case YAML_ALIAS_EVENT:
                let name = Self.text(event.data.alias.anchor) ?? ""
                guard let value = anchors[name] else {
                    throw Failure(message: "unknown alias '\(name)'", line: line, column: column)
                }
                try add(value, keyText: nil, isMerge: false, line: line, column: column)
            case YAML_SEQUENCE_START_EVENT:
                stack.append(.list(items: [], anchor: Self.text(event.data.sequence_start.anchor)))
            case YAML_MAPPING_START_EVENT:
                stack.append(.map(entries: [], key: nil, anchor: Self.text(event.data.mapping_start.anchor)))
            case YAML_SEQUENCE_END_EVENT:
                guard case .list(let items, let anchor)? = stack.popLast() else { break }
                let value = Value.list(items)
                if let anchor { anchors[anchor] = value }
                try add(value, keyText: nil, isMerge: false, line: line, column: column)
            case YAML_MAPPING_END_EVENT:
                guard case .map(let entries, _, let anchor)? = stack.popLast() else { break }
                let value = try Self.finishMap(entries, line: line, column: column)
                if let anchor { anchors[anchor] = value }
                try add(value, keyText: nil, isMerge: false, line: line, column: column)
            default:
                break
            }
            return false
        }

        private mutating func add(_ value: Value, keyText: String?, isMerge: Bool, line: Int, column: Int)
            throws(Failure)
        {
            guard let top = stack.popLast() else {
                result = value
                return
            }
            switch top {
            case .list(var items, let anchor):
                items.append(value)
                stack.append(.list(items: items, anchor: anchor))
            case .map(var entries, let key, let anchor):
                if let key {
                    entries.append((key: key.text, value: value, isMerge: key.isMerge))
                    stack.append(.map(entries: entries, key: nil, anchor: anchor))
                } else {
                    let text: String
                    switch value {
                    case .string(let s): text = s
                    case .list, .map: text = value.jsonText()
                    default: text = keyText ?? value.jsonText()
                    }
                    stack.append(.map(entries: entries, key: (text: text, isMerge: isMerge), anchor: anchor))
                }
            }
        }

        /// Applies merge keys (explicit keys win; among merged maps the earlier wins) and makes
        /// keys unique (first position, last value).
        static func finishMap(_ entries: [(key: String, value: Value, isMerge: Bool)], line: Int, column: Int)
            throws(Failure)
            -> Value
        {
            var merged: [(key: String, value: Value)] = []
            var explicit: [(key: String, value: Value)] = []
            for e in entries {
                guard e.isMerge else {
                    explicit.append((key: e.key, value: e.value))
                    continue
                }
                var sources: [Value]
                switch e.value {
                case .map: sources = [e.value]
                case .list(let l): sources = l
                default:
                    throw Failure(
                        message: "a merge key needs a mapping or a list of mappings", line: line, column: column)
                }
                // PyYAML: for a list, earlier maps override later ones.
                sources.reverse()
                for source in sources {
                    guard case .map(let m) = source else {
                        throw Failure(
                            message: "a merge key needs a mapping or a list of mappings", line: line, column: column)
                    }
                    merged += m
                }
            }
            var out: [(key: String, value: Value)] = []
            var index: [String: Int] = [:]
            for e in merged + explicit {
                if let i = index[e.key] {
                    out[i].value = e.value
                } else {
                    index[e.key] = out.count
                    out.append(e)
                }
            }
            return .map(out)
        }
    }
}
