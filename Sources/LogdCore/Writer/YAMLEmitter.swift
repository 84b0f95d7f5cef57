import CYAML
import Wire
import LogdSystem

/// Renders value trees as YAML with libyaml's emitter, so that `yaml.safe_load` gives back
/// exactly the tree: strings are quoted unless they are plain words no resolver reads as
/// another type (a string "yes", "1.0", "null" or "~" is quoted and stays a string),
/// doubles always carry a `.` (`1.0e-05`, `.nan`, `.inf`), no anchors, no aliases.
///
/// Quoted strings are always double-quoted: libyaml escapes every line break, tab and
/// non-printable character there (`\n`, `\t`, `\0`, `\L`, …), so a multi-line string is one
/// YAML line (folded only at spaces past the width) — no blank or trailing-space lines for
/// yamllint to reject, and no raw `\r` or U+2028 for a reader to normalise. Map keys are unique
/// in the trees logd renders (params are merged key by key).
///
/// Writer-confined in use (it renders on the writer thread), but stateless: any thread may call.
public enum YAMLEmitter {
    public static func render(_ value: Value) -> [UInt8] {
        var emitter = yaml_emitter_t()
        var out = OutputBox()
        yaml_emitter_initialize(&emitter)
        defer { yaml_emitter_delete(&emitter) }
        yaml_emitter_set_unicode(&emitter, 1)
        yaml_emitter_set_width(&emitter, 120)
        yaml_emitter_set_indent(&emitter, 2)
        withUnsafeMutablePointer(to: &out) { outPtr in
            yaml_emitter_set_output(
                &emitter,
                { data, buffer, size in
                    let box = data!.assumingMemoryBound(to: OutputBox.self)
                    box.pointee.bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
                    return 1
                }, outPtr)
            var event = yaml_event_t()
            yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING)
            yaml_emitter_emit(&emitter, &event)
            yaml_document_start_event_initialize(&event, nil, nil, nil, 0)
            yaml_emitter_emit(&emitter, &event)
            emit(value, &emitter)
            yaml_document_end_event_initialize(&event, 1)
            yaml_emitter_emit(&emitter, &event)
            yaml_stream_end_event_initialize(&event)
            yaml_emitter_emit(&emitter, &event)
            yaml_emitter_flush(&emitter)
        }
        return out.bytes
    }

    struct OutputBox { var bytes: [UInt8] = [] }

    /// The plain YAML 1.1 form of a double that PyYAML and libyaml-based loaders read as a float.
    public static func doubleText(_ d: Double) -> String {
        if d.isNaN { return ".nan" }
        if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }
        let s = d.description
        // Bytes, not Characters: ASCII text, and a grapheme walk cost ~40 instructions a byte.
        if s.utf8.contains(0x2E) { return s }
        if let e = s.utf8.firstIndex(where: { $0 == 0x65 || $0 == 0x45 }) {
            return String(s[..<e]) + ".0" + String(s[e...])
        }
        return s + ".0"
    }

    /// Words a YAML 1.1 loader reads as a bool or null when unquoted.
    static let reservedWords: Set<String> = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null",
    ]

    /// Whether `s` reads back as the same string when written plain: an identifier-like word
    /// (`[A-Za-z_][A-Za-z0-9_.-]*`) that no resolver turns into a bool or null.
    static func isPlainSafe(_ s: String) -> Bool {
        guard let first = s.utf8.first, first == 0x5F || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else { return false }
        for b in s.utf8 {
            let ok = b == 0x5F || b == 0x2D || b == 0x2E || (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A)
            if !ok { return false }
        }
        return !reservedWords.contains(s.lowercased())
    }

    private static func string(_ text: String, _ emitter: inout yaml_emitter_t) {
        if isPlainSafe(text) {
            scalar(text, quoted: false, &emitter)
        } else {
            scalar(text, quoted: true, &emitter)
        }
    }

    private static func scalar(_ text: String, quoted: Bool, _ emitter: inout yaml_emitter_t) {
        var event = yaml_event_t()
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBufferPointer { buf in
            // Strings: plain_implicit = 0, quoted_implicit = 1 — libyaml must quote them.
            yaml_scalar_event_initialize(
                &event, nil, nil, buf.baseAddress, Int32(buf.count), quoted ? 0 : 1, quoted ? 1 : 0,
                quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE)
        }
        yaml_emitter_emit(&emitter, &event)
    }

    private static func emit(_ value: Value, _ emitter: inout yaml_emitter_t) {
        var event = yaml_event_t()
        switch value {
        case .null: scalar("null", quoted: false, &emitter)
        case .bool(let b): scalar(b ? "true" : "false", quoted: false, &emitter)
        case .int(let i): scalar(String(i), quoted: false, &emitter)
        case .double(let d): scalar(doubleText(d), quoted: false, &emitter)
        case .string(let s): string(s, &emitter)
        case .list(let items):
            yaml_sequence_start_event_initialize(
                &event, nil, nil, 1, items.isEmpty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE)
            yaml_emitter_emit(&emitter, &event)
            for item in items { emit(item, &emitter) }
            yaml_sequence_end_event_initialize(&event)
            yaml_emitter_emit(&emitter, &event)
        case .map(let entries):
            yaml_mapping_start_event_initialize(
                &event, nil, nil, 1, entries.isEmpty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE)
            yaml_emitter_emit(&emitter, &event)
            for (key, item) in entries {
                string(key, &emitter)
                emit(item, &emitter)
            }
            yaml_mapping_end_event_initialize(&event)
            yaml_emitter_emit(&emitter, &event)
        }
    }
}
