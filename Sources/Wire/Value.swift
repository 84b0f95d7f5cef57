/// A typed value tree: how params, model layers and control replies travel.
///
/// Maps keep their keys in the order they were given (a config reads best in its own order).
/// Equality is exact: doubles compare by bit pattern, so `nan == nan` and `0.0 != -0.0`,
/// which is what a round trip must preserve.
public indirect enum Value: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case list([Value])
    case map([(key: String, value: Value)])

    /// Wire tags of the value encoding.
    public enum Tag: UInt8, Sendable {
        case null = 0x00
        case `false` = 0x01
        case `true` = 0x02
        case int = 0x03
        case double = 0x04
        case string = 0x05
        case list = 0x06
        case map = 0x07
    }

    /// The entry for `key` in a map (the last one, if a map repeats a key), else nil.
    public subscript(key: String) -> Value? {
        guard case .map(let entries) = self else { return nil }
        return entries.last(where: { $0.key == key })?.value
    }

    /// Depth of the tree: a scalar is 1, a list of scalars 2.
    public var depth: Int {
        switch self {
        case .list(let items): 1 + (items.map(\.depth).max() ?? 0)
        case .map(let entries): 1 + (entries.map(\.value.depth).max() ?? 0)
        default: 1
        }
    }
}

extension Value: Equatable {
    public static func == (a: Value, b: Value) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.double(let x), .double(let y)): x.bitPattern == y.bitPattern
        case (.string(let x), .string(let y)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.map(let x), .map(let y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }
}

extension Value: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: Value...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, Value)...) {
        self = .map(elements.map { (key: $0.0, value: $0.1) })
    }
}

extension Value {
    /// Merges `other` into `self`: maps merge key by key, recursively; anything else in `other`
    /// replaces what was there. This is the rule by which later params override earlier ones.
    public func merging(_ other: Value) -> Value {
        guard case .map(var mine) = self, case .map(let theirs) = other else { return other }
        for (key, value) in theirs {
            if let i = mine.lastIndex(where: { $0.key == key }) {
                mine[i].value = mine[i].value.merging(value)
            } else {
                mine.append((key: key, value: value))
            }
        }
        return .map(mine)
    }
}
