import LogdSystem
import Wire

/// How logd's records become MLflow's (docs/MLFLOW.md, "Mapping"). Pure functions.
package enum Mapping {
    /// MLflow's limits (mlflow/utils/validation.py, 3.x).
    package static let maxKeyLength = 250
    package static let maxParamValueLength = 6000
    package static let maxTagValueLength = 8000

    /// The MLflow metric key of one metrics.csv row:
    /// `[rank<R>/][<context>/]<key>[/<source>]`: rank 0, context `training` and an empty source
    /// add nothing, so a single-process run's `loss` stays `loss`.
    package static func metricKey(context: String, key: String, rank: Int64, source: String) -> String {
        var s = ""
        if rank != 0 { s += "rank\(rank)/" }
        if context != "training" { s += context + "/" }
        s += key
        if !source.isEmpty { s += "/" + source }
        return validName(s)
    }

    /// A name MLflow accepts (metric, param or tag key): bytes outside `[A-Za-z0-9_.\- /:]` become
    /// `_`; empty, `.` and `..` path parts become `_`, `__` (MLflow refuses names that a path
    /// normalization would change); over 250 bytes: the first 233 bytes, `_`, and 16 hex digits
    /// of the FNV-1a hash of the whole mapped name (so two long names never meet).
    package static func validName(_ name: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(name.utf8.count)
        for b in name.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F, 0x2E, 0x2D, 0x20, 0x2F, 0x3A: bytes.append(b)
            default: bytes.append(0x5F)
            }
        }
        if bytes.isEmpty { bytes = [0x5F] }
        let parts = bytes.split(separator: 0x2F, omittingEmptySubsequences: false).map { part -> [UInt8] in
            if part.isEmpty { return [0x5F] }
            if Array(part) == [0x2E] { return [0x5F] }
            if Array(part) == [0x2E, 0x2E] { return [0x5F, 0x5F] }
            return Array(part)
        }
        var out = Array(parts.joined(separator: [0x2F]))
        if out.count > maxKeyLength {
            let hash = fnv1a(out)
            out = Array(out.prefix(maxKeyLength - 17)) + Array("_".utf8) + Array(hex16(hash).utf8)
            // A cut may leave a trailing `/` or `.`-only part: MLflow would refuse it.
            out = Array(validPathParts(out))
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func validPathParts(_ bytes: [UInt8]) -> [UInt8] {
        Array(
            bytes.split(separator: 0x2F, omittingEmptySubsequences: false).map { part -> [UInt8] in
                if part.isEmpty { return [0x5F] }
                if Array(part) == [0x2E] { return [0x5F] }
                if Array(part) == [0x2E, 0x2E] { return [0x5F, 0x5F] }
                return Array(part)
            }.joined(separator: [0x2F]))
    }

    /// A param or tag value MLflow keeps whole: longer values are cut to `limit` bytes (on a
    /// character boundary) with a marker saying so, and where the whole value is
    /// (`… [logd: 12345 bytes, cut; whole value in <whereWhole>]`); nil when not cut.
    package static func boundedValue(_ value: String, limit: Int, whereWhole: String) -> (String, cut: Bool) {
        guard value.utf8.count > limit else { return (value, false) }
        let marker = " … [logd: \(value.utf8.count) bytes, cut; whole value in \(whereWhole)]"
        let keep = max(0, limit - marker.utf8.count)
        var kept = 0
        var out = ""
        for ch in value {
            let n = ch.utf8.count
            if kept + n > keep { break }
            out.append(ch)
            kept += n
        }
        return (out + marker, true)
    }

    /// config.yaml flattened to MLflow params: nested map keys joined with `.`; a list or a
    /// scalar is one value. Strings as they are, numbers in their shortest form, booleans
    /// `true`/`false`, null `null`, a list as JSON.
    package static func flattenParams(_ tree: Value) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        func walk(_ prefix: String, _ v: Value) {
            if case .map(let entries) = v, !entries.isEmpty {
                for e in entries { walk(prefix.isEmpty ? e.key : prefix + "." + e.key, e.value) }
            } else if !prefix.isEmpty {
                out.append((key: prefix, value: scalarText(v)))
            }
        }
        walk("", tree)
        return out
    }

    package static func scalarText(_ v: Value) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): d.isNaN ? "nan" : d.isInfinite ? (d < 0 ? "-inf" : "inf") : d.description
        case .string(let s): s
        case .list, .map: v.jsonText()
        }
    }

    /// A metric value in MLflow's JSON (protobuf's JSON mapping): NaN and ±infinity as the strings
    /// `"NaN"`, `"Infinity"`, `"-Infinity"` (MLflow keeps NaN; its SQL store keeps ±infinity as
    /// ±1.7976931348623157e308).
    package static func jsonDouble(_ d: Double) -> String {
        if d.isNaN { return "\"NaN\"" }
        if d.isInfinite { return d < 0 ? "\"-Infinity\"" : "\"Infinity\"" }
        let s = d.description
        return s
    }

    package static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    package static func fnv1a(_ s: String) -> UInt64 { fnv1a(Array(s.utf8)) }

    package static func hex16(_ v: UInt64) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h
    }

    /// A JSON string literal.
    package static func jsonString(_ s: String) -> String { Value.string(s).jsonText() }
}
