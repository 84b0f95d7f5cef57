/// A dictionary that keeps at most `capacity` keys: when full, the key inserted longest ago is
/// forgotten first. What logd remembers of finished runs and sessions, bounded.
package struct RecentMap<Key: Hashable, Value> {
    package let capacity: Int
    private var values: [Key: Value] = [:]
    private var order: [Key] = []
    private var start = 0

    package init(capacity: Int) { self.capacity = capacity }

    package subscript(key: Key) -> Value? { values[key] }
    package var count: Int { values.count }

    package mutating func set(_ value: Value, for key: Key) {
        if values.updateValue(value, forKey: key) == nil { order.append(key) }
        while values.count > capacity, start < order.count {
            values.removeValue(forKey: order[start])
            start += 1
        }
        if start > capacity {
            order.removeFirst(start)
            start = 0
        }
    }
}
