#if canImport(Glibc)
    import Glibc
#endif
import Wire

/// What the MLflow forwarder (LogdForward) leaves on disk, read by logctl and by the forwarder:
///
/// - `<run directory>/.logd-forward-mlflow`: the run's durable cursor, JSON (docs/MLFLOW.md):
///   the MLflow run it goes to and what the server acknowledged.
/// - `<data root>/.logd/forward-mlflow.json`: the forwarder's state per run (behind, refused,
///   last error), rewritten as it works; not durable, for `logctl status`.
public enum ForwardState {
    public static let cursorName = ".logd-forward-mlflow"
    public static let statusPath = ".logd/forward-mlflow.json"

    /// A run directory's cursor, nil when the run was never forwarded (or the file is unreadable).
    public static func cursor(runDirectory: String) -> Value? {
        guard let bytes = FS.read(runDirectory + "/" + cursorName), let v = try? JSON.parse(bytes), case .map = v else {
            return nil
        }
        return v
    }

    /// The MLflow run id a run directory was forwarded to, if any.
    public static func mlflowRunID(runDirectory: String) -> String? {
        if case .string(let id)? = cursor(runDirectory: runDirectory)?["mlflow_run_id"], !id.isEmpty { return id }
        return nil
    }

    /// The forwarder's status document under a data root, nil when forwarding is off (or never ran).
    public static func status(dataRoot: String) -> Value? {
        let base = dataRoot.hasSuffix("/") ? String(dataRoot.dropLast()) : dataRoot
        guard let bytes = FS.read(base + "/" + statusPath), let v = try? JSON.parse(bytes), case .map = v else { return nil }
        return v
    }
}

/// A small strict JSON (RFC 8259) reader into `Value`: objects become maps (key order kept),
/// integers that fit Int64 `.int`, other numbers `.double`.
public enum JSON {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let offset: Int
        public let reason: String
        public var description: String { "JSON: \(reason) at byte \(offset)" }
    }

    public static func parse(_ text: String) throws(Failure) -> Value { try parse(Array(text.utf8)) }

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> Value {
        var p = Parser(b: bytes)
        p.space()
        let v = try p.value(depth: 0)
        p.space()
        guard p.i == bytes.count else { throw Failure(offset: p.i, reason: "trailing bytes") }
        return v
    }

    struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func space() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        func fail(_ reason: String) -> Failure { Failure(offset: i, reason: reason) }

        mutating func literal(_ word: String, _ v: Value) throws(Failure) -> Value {
            let w = Array(word.utf8)
            guard i + w.count <= b.count, Array(b[i..<i + w.count]) == w else { throw fail("unexpected byte") }
            i += w.count
            return v
        }

        mutating func value(depth: Int) throws(Failure) -> Value {
            guard depth < 512 else { throw fail("nested too deep") }
            guard i < b.count else { throw fail("unexpected end") }
            switch b[i] {
            case 0x7B:  // {
                i += 1
                var entries: [(key: String, value: Value)] = []
                space()
                if i < b.count, b[i] == 0x7D {
                    i += 1
                    return .map(entries)
                }
                while true {
                    space()
                    guard i < b.count, b[i] == 0x22 else { throw fail("expected a key") }
                    let k = try string()
                    space()
                    guard i < b.count, b[i] == 0x3A else { throw fail("expected ':'") }
                    i += 1
                    space()
                    entries.append((key: k, value: try value(depth: depth + 1)))
                    space()
                    guard i < b.count else { throw fail("unexpected end") }
                    if b[i] == 0x2C {
                        i += 1
                        continue
                    }
                    guard b[i] == 0x7D else { throw fail("expected ',' or '}'") }
                    i += 1
                    return .map(entries)
                }
            case 0x5B:  // [
                i += 1
                var items: [Value] = []
                space()
                if i < b.count, b[i] == 0x5D {
                    i += 1
                    return .list(items)
                }
                while true {
                    space()
                    items.append(try value(depth: depth + 1))
                    space()
                    guard i < b.count else { throw fail("unexpected end") }
                    if b[i] == 0x2C {
                        i += 1
                        continue
                    }
                    guard b[i] == 0x5D else { throw fail("expected ',' or ']'") }
                    i += 1
                    return .list(items)
                }
            case 0x22: return .string(try string())
            case 0x74: return try literal("true", .bool(true))
            case 0x66: return try literal("false", .bool(false))
            case 0x6E: return try literal("null", .null)
            default: return try number()
            }
        }

        mutating func number() throws(Failure) -> Value {
            let start = i
            var isInt = true
            if i < b.count, b[i] == 0x2D { i += 1 }
            while i < b.count {
                let c = b[i]
                if c >= 0x30 && c <= 0x39 {
                    i += 1
                } else if c == 0x2E || c == 0x65 || c == 0x45 || c == 0x2B || c == 0x2D {
                    isInt = false
                    i += 1
                } else {
                    break
                }
            }
            guard i > start else { throw fail("unexpected byte") }
            let text = String(decoding: b[start..<i], as: UTF8.self)
            if isInt, let v = Int64(text) { return .int(v) }
            var out: Double = 0
            let ok = text.withCString { p -> Bool in
                var end: UnsafeMutablePointer<CChar>?
                out = strtod(p, &end)
                return end.map { $0 - UnsafeMutablePointer(mutating: p) == text.utf8.count } ?? false
            }
            guard ok else { throw Failure(offset: start, reason: "bad number") }
            return .double(out)
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("bad \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws(Failure) -> String {
            i += 1  // the opening quote
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]
                if c == 0x22 {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if c != 0x5C {
                    out.append(c)
                    i += 1
                    continue
                }
                i += 1
                guard i < b.count else { throw fail("unterminated string") }
                let e = b[i]
                i += 1
                switch e {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x2F: out.append(0x2F)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00, i + 1 < b.count, b[i] == 0x5C, b[i + 1] == 0x75 {
                        i += 2
                        let low = try hex4()
                        if low >= 0xDC00 && low < 0xE000 {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            scalar = 0xFFFD
                        }
                    }
                    let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("bad escape")
                }
            }
        }
    }
}
