/// The few protobuf wire-format rules TensorBoard's messages need (varints, fixed 32/64-bit,
/// length-delimited fields), written by hand: the event files hold a dozen fields of five
/// messages, and a generated swift-protobuf model would cost a dependency and a message object
/// per record on the daemon's hot path (docs/ON_DISK_FORMAT.md, "TensorBoard event files").
public struct Proto {
    public var bytes: [UInt8] = []

    public init() {}

    @inline(__always)
    public static func varintSize(_ v: UInt64) -> Int {
        var n = 1
        var x = v >> 7
        while x != 0 {
            n += 1
            x >>= 7
        }
        return n
    }

    public mutating func varint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: x) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }

    public mutating func key(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }

    /// An int32/int64/enum field (negative values take ten bytes, as protobuf says).
    public mutating func int(_ field: Int, _ v: Int64) {
        key(field, 0)
        varint(UInt64(bitPattern: v))
    }

    public mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func data(_ field: Int, _ v: [UInt8]) {
        key(field, 2)
        varint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    public mutating func string(_ field: Int, _ v: String) { data(field, Array(v.utf8)) }

    public mutating func message(_ field: Int, _ m: Proto) { data(field, m.bytes) }

    /// A packed repeated double field.
    public mutating func doubles(_ field: Int, _ v: [Double]) {
        key(field, 2)
        varint(UInt64(v.count * 8))
        for d in v { withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    }
}

/// Bytes gathered for an event file, in a buffer of raw memory: the daemon encodes every scalar
/// straight into it (no array bounds or uniqueness checks per byte).
public final class EventBuffer {
    public private(set) var base: UnsafeMutablePointer<UInt8>
    public private(set) var count = 0
    public private(set) var capacity: Int

    public init(capacity: Int = 64 << 10) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `n` more bytes.
    @inline(__always)
    public func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    private func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let b = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        b.update(from: base, count: count)
        base.deallocate()
        base = b
        capacity = c
    }

    public func removeAll() { count = 0 }

    /// Drops everything after the first `n` bytes.
    public func truncate(_ n: Int) { count = min(count, max(0, n)) }

    /// Drops the first `n` bytes (what a short write handed to the kernel).
    public func removeFirst(_ n: Int) {
        let k = min(n, count)
        (base).update(from: base + k, count: count - k)
        count -= k
    }

    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Counts `n` bytes the caller stored at `base + count` (after `reserve`).
    @inline(__always)
    public func advance(_ n: Int) { count += n }

    // Unchecked stores: the caller reserved the room.

    @inline(__always)
    public func put(_ b: UInt8) {
        base[count] = b
        count += 1
    }

    @inline(__always)
    public func put(_ p: UnsafePointer<UInt8>, _ n: Int) {
        (base + count).update(from: p, count: n)
        count += n
    }

    @inline(__always)
    public func putVarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            base[count] = UInt8(truncatingIfNeeded: x) | 0x80
            count += 1
            x >>= 7
        }
        base[count] = UInt8(x)
        count += 1
    }

    @inline(__always)
    public func putFixed64(_ v: UInt64) {
        UnsafeMutableRawPointer(base + count).storeBytes(of: v.littleEndian, as: UInt64.self)
        count += 8
    }

    /// Appends whole bytes, growing as needed.
    public func append(_ bytes: [UInt8]) {
        reserve(bytes.count)
        bytes.withUnsafeBufferPointer { if let p = $0.baseAddress { put(p, $0.count) } }
    }

    // MARK: TFRecord framing

    /// Starts a record: 12 bytes of header room (length, its masked CRC); returns where it begins.
    @inline(__always)
    public func beginRecord(payload: Int) -> Int {
        reserve(payload + 16)
        let start = count
        count += 12
        return start
    }

    /// Ends the record begun at `start`: fills in the header and appends the payload's masked CRC.
    /// TFRecord: `uint64 length, uint32 masked_crc32c(length), bytes data, uint32 masked_crc32c(data)`,
    /// little-endian.
    @inline(__always)
    public func endRecord(_ start: Int) {
        reserve(4)
        let length = count - start - 12
        let header = UnsafeMutableRawPointer(base + start)
        header.storeBytes(of: UInt64(length).littleEndian, as: UInt64.self)
        let lengthCRC = CRC32C.masked(CRC32C.checksum(header, count: 8))
        header.storeBytes(of: lengthCRC.littleEndian, toByteOffset: 8, as: UInt32.self)
        let dataCRC = CRC32C.masked(CRC32C.checksum(header + 12, count: length))
        UnsafeMutableRawPointer(base + count).storeBytes(of: dataCRC.littleEndian, as: UInt32.self)
        count += 4
    }

    /// One whole record holding `payload`.
    public func appendRecord(_ payload: [UInt8]) {
        let start = beginRecord(payload: payload.count)
        payload.withUnsafeBufferPointer { if let p = $0.baseAddress { put(p, $0.count) } }
        endRecord(start)
    }
}
