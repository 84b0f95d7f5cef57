/// Every way a byte stream can fail to be logd wire protocol, version 1.
///
/// A decoder reports exactly one of these and consumes nothing; the daemon closes that one
/// connection. `code` is the stable name used in docs and golden vectors.
public enum WireError: Error, Equatable, Sendable {
    /// The length prefix is 0: every frame holds at least its kind byte.
    case emptyFrame
    /// The length prefix exceeds `WireLimits.maxFrameBytes` (known after 4 bytes, before any read).
    case frameTooLarge(length: UInt32, limit: Int)
    /// A field runs past the end of its frame (the length prefix is too small for the body).
    case truncatedBody(kind: UInt8)
    /// The body is longer than its fields.
    case trailingBytes(kind: UInt8, count: Int)
    /// A kind this version does not know, from a peer that did not announce a newer minor version.
    case unknownKind(UInt8)
    /// A HELLO whose body does not start with `LOGD`.
    case badMagic
    /// A HELLO from another major protocol version.
    case unsupportedVersion(major: UInt8, minor: UInt8)
    /// A string field holds bytes that are not UTF-8.
    case invalidUTF8(field: String)
    /// A string field is longer than its limit.
    case stringTooLong(field: String, length: UInt32, limit: Int)
    /// A value tree nests deeper than `WireLimits.maxDepth`.
    case nestingTooDeep(limit: Int)
    /// A list, map, string list or batch claims more elements than its limit or its bytes allow.
    case collectionTooLarge(field: String, count: UInt32, limit: Int)
    /// An enum field (role, level, status, value tag, ...) holds a value with no meaning.
    case invalidEnum(field: String, value: UInt64)
    /// The stream ended inside a frame.
    case truncatedStream(bufferedBytes: Int)

    /// Stable snake_case name of the case, as used in docs/WIRE_PROTOCOL.md and vectors/.
    public var code: String {
        switch self {
        case .emptyFrame: "empty_frame"
        case .frameTooLarge: "frame_too_large"
        case .truncatedBody: "truncated_body"
        case .trailingBytes: "trailing_bytes"
        case .unknownKind: "unknown_kind"
        case .badMagic: "bad_magic"
        case .unsupportedVersion: "unsupported_version"
        case .invalidUTF8: "invalid_utf8"
        case .stringTooLong: "string_too_long"
        case .nestingTooDeep: "nesting_too_deep"
        case .collectionTooLarge: "collection_too_large"
        case .invalidEnum: "invalid_enum"
        case .truncatedStream: "truncated_stream"
        }
    }
}

extension WireError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .emptyFrame: "frame length 0 (a frame holds at least its kind byte)"
        case .frameTooLarge(let n, let limit): "frame length \(n) exceeds the limit of \(limit) bytes"
        case .truncatedBody(let k): "frame of kind 0x\(hex(k)) ends inside a field"
        case .trailingBytes(let k, let n): "frame of kind 0x\(hex(k)) has \(n) bytes after its last field"
        case .unknownKind(let k): "unknown frame kind 0x\(hex(k))"
        case .badMagic: "handshake does not start with LOGD"
        case .unsupportedVersion(let major, let minor): "unsupported protocol version \(major).\(minor)"
        case .invalidUTF8(let f): "field \(f) is not valid UTF-8"
        case .stringTooLong(let f, let n, let limit): "field \(f) is \(n) bytes, limit \(limit)"
        case .nestingTooDeep(let limit): "value tree nests deeper than \(limit)"
        case .collectionTooLarge(let f, let n, let limit): "field \(f) claims \(n) elements, limit \(limit)"
        case .invalidEnum(let f, let v): "field \(f) has invalid value \(v)"
        case .truncatedStream(let n): "stream ended inside a frame (\(n) bytes buffered)"
        }
    }
}

@inline(__always)
func hex(_ b: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}
