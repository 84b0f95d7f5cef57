#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem
import Wire

/// One metric key as the writer knows it: its run and the CSV bytes around the value, rendered
/// once when the key is defined. A class in a dense table indexed by the loop's key index, so
/// a metric costs one array load (no hashing) and the line is assembled with memcpy.
final class WriterKey {
    let run: RunFiles
    let runIndex: Int32
    /// `context,key,` escaped for CSV.
    let middle: UnsafeMutableRawBufferPointer
    /// `,rank,source\n` escaped for CSV.
    let tail: UnsafeMutableRawBufferPointer
    /// The run's running summary of (context, key) this key updates (-1: none).
    let summary: Int
    /// The room a line of this key needs: its fragments, the time (24 bytes), the step (at
    /// most 20), the value (at most 32), two commas, and `ShortCopy`'s slack past the end.
    let maxLine: Int

    init(run: RunFiles, runIndex: Int32, middle: [UInt8], tail: [UInt8], summary: Int) {
        self.run = run
        self.runIndex = runIndex
        self.middle = WriterKey.copy(middle)
        self.tail = WriterKey.copy(tail)
        self.summary = summary
        maxLine = middle.count + tail.count + 24 + 20 + 32 + 2 + ShortCopy.slack
    }

    deinit {
        middle.deallocate()
        tail.deallocate()
    }

    /// The bytes with `ShortCopy.slack` readable bytes after them.
    private static func copy(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + ShortCopy.slack, alignment: 1)
        p.initializeMemory(as: UInt8.self, repeating: 0)
        bytes.withUnsafeBytes { p.copyMemory(from: $0) }
        return UnsafeMutableRawBufferPointer(rebasing: p[0..<bytes.count])
    }
}

/// The writer's keys by key index: owned here, and read on the per-metric path through
/// unretained references (`unretained`), so a lookup costs no retain and release (callgrind:
/// ~25 instructions per metric when keys change every metric).
struct WriterKeyTable {
    private var owners: [WriterKey?] = []
    private var refs: [Unmanaged<WriterKey>?] = []

    subscript(k: Int) -> WriterKey? {
        get { k >= 0 && k < owners.count ? owners[k] : nil }
        set {
            owners[k] = newValue
            refs[k] = newValue.map { Unmanaged.passUnretained($0) }
        }
    }

    /// Key `k`, valid while this table holds it.
    @inline(__always)
    func unretained(_ k: Int) -> Unmanaged<WriterKey>? { k >= 0 && k < refs.count ? refs[k] : nil }

    mutating func grow(to count: Int) {
        guard count > owners.count else { return }
        owners += repeatElement(nil, count: count - owners.count)
        refs += repeatElement(nil, count: count - refs.count)
    }

    mutating func removeAll(where match: (WriterKey) -> Bool) {
        for k in owners.indices where owners[k].map(match) == true { self[k] = nil }
    }
}

/// Copies of a line's short fields without a call to memcpy (callgrind: ~20 instructions a
/// call, seven calls a metric): up to 32 bytes are moved as two 16-byte words, so the source
/// must be readable and the destination writable `slack` bytes past the field's start.
enum ShortCopy {
    static let slack = 32

    @inline(__always)
    static func copy(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ count: Int) -> UnsafeMutableRawPointer {
        if count <= 32 {
            dst.storeBytes(of: src.loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
            (dst + 16).storeBytes(of: (src + 16).loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
        } else {
            memcpy(dst, src, count)
        }
        return dst + count
    }
}

/// Where a metrics.csv line's fields lie from its start: the time is [0, timeEnd), the step
/// [timeEnd + 1, stepEnd), the value [valueStart, valueEnd), and `,rank,source\n` from valueEnd
/// to the line's end (what the per-key rows reuse, in another order).
struct MetricLineFields {
    var timeEnd = 0
    var stepEnd = 0
    var valueStart = 0
    var valueEnd = 0
    var lineBytes = 0
}

/// Formats one metrics.csv line in place (the file's buffer) with plain stores: the time (the
/// part up to the second cached), the step and value digits, and the key's bytes. callgrind
/// showed the `[UInt8].append` version at ~1,000 instructions per line in generic appends.
struct MetricLineFormatter {
    private let tables = MetricLineFormatter.tables
    /// The first nanosecond of the second `prefix` holds (`.max`: none).
    private var cachedSecondStart: Int64 = .max
    private var prefix: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 19 bytes `YYYY-MM-DDTHH:MM:SS`
    private var prefixBytes = 0
    /// Writes the line of `m` for `key` at `start` (room for `key.maxLine` bytes); returns
    /// where its fields lie.
    @inline(__always)
    mutating func line(_ m: Metric, key: WriterKey, at start: UnsafeMutablePointer<UInt8>) -> MetricLineFields {
        var f = MetricLineFields()
        var p = start
        p = time(m.timestamp, at: p)
        f.timeEnd = p - start
        p.pointee = 0x2C
        p += 1
        if m.step != WireProtocol.noStep { p = MetricLineFormatter.integer(m.step, at: p, tables: tables) }
        f.stepEnd = p - start
        p.pointee = 0x2C
        p += 1
        p = MetricLineFormatter.copy(key.middle, to: p)
        f.valueStart = p - start
        p = MetricLineFormatter.double(m.value, at: p, tables: tables)
        f.valueEnd = p - start
        p = MetricLineFormatter.copy(key.tail, to: p)
        f.lineBytes = p - start
        return f
    }

    @inline(__always)
    private static func copy(_ bytes: UnsafeMutableRawBufferPointer, to p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        ShortCopy.copy(UnsafeMutableRawPointer(p), UnsafeRawPointer(bytes.baseAddress!), bytes.count).assumingMemoryBound(to: UInt8.self)
    }

    /// ISO-8601 UTC with milliseconds, byte-identical to `ISOTimeFormatter`.
    @inline(__always)
    mutating func time(_ nanos: Int64, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        // nanos ≥ start, so the difference is exact as a UInt64 (it may not fit an Int64).
        var subsecond = nanos &- cachedSecondStart
        if nanos < cachedSecondStart || UInt64(bitPattern: subsecond) >= 1_000_000_000 {  // another second: no division per line
            let (q, r) = nanos.quotientAndRemainder(dividingBy: 1_000_000_000)
            let second = r < 0 ? q - 1 : q
            subsecond = r < 0 ? r + 1_000_000_000 : r
            // The second's first nanosecond; a second whose start is not an Int64 never matches.
            let (start, overflow) = second.multipliedReportingOverflow(by: 1_000_000_000)
            cachedSecondStart = overflow ? .max : start
            if overflow { subsecond = r < 0 ? r + 1_000_000_000 : r }
            let text = Array(ISOTimeFormatter.secondText(second).utf8)
            prefixBytes = min(text.count, 24)
            withUnsafeMutableBytes(of: &prefix) { raw in
                raw.initializeMemory(as: UInt8.self, repeating: 0)
                for i in 0..<prefixBytes { raw[i] = text[i] }
            }
        }
        var p = p
        let raw = UnsafeMutableRawPointer(p)  // all 24 bytes: the line has room past them
        raw.storeBytes(of: prefix.0, as: UInt64.self)
        raw.storeBytes(of: prefix.1, toByteOffset: 8, as: UInt64.self)
        raw.storeBytes(of: prefix.2, toByteOffset: 16, as: UInt64.self)
        p += prefixBytes
        let ms = Int(truncatingIfNeeded: UInt32(truncatingIfNeeded: subsecond) / 1_000_000)
        let millis = UnsafeRawPointer(tables).load(fromByteOffset: MetricLineFormatter.millisOffset &+ 4 &* ms, as: UInt32.self)
        UnsafeMutableRawPointer(p).storeBytes(of: millis, as: UInt32.self)
        p[4] = 0x5A
        return p + 5
    }

    /// "00" "01" … "99" (two digits per division), then 10^0 … 10^19, then ".000" … ".999"
    /// (a time's milliseconds, one 4-byte store): allocated once, read through a pointer (a
    /// `static let` array cost a `swift_once` and bounds checks per call).
    private static let millisOffset = 200 + 20 * 8
    nonisolated(unsafe) private static let tables: UnsafePointer<UInt8> = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: millisOffset + 4 * 1000, alignment: 8)
        for ms in 0..<1000 {
            p.storeBytes(of: 0x2E, toByteOffset: millisOffset + 4 * ms, as: UInt8.self)
            p.storeBytes(of: UInt8(0x30 + ms / 100), toByteOffset: millisOffset + 4 * ms + 1, as: UInt8.self)
            p.storeBytes(of: UInt8(0x30 + ms / 10 % 10), toByteOffset: millisOffset + 4 * ms + 2, as: UInt8.self)
            p.storeBytes(of: UInt8(0x30 + ms % 10), toByteOffset: millisOffset + 4 * ms + 3, as: UInt8.self)
        }
        for v in 0..<100 {
            p.storeBytes(of: UInt8(0x30 + v / 10), toByteOffset: 2 * v, as: UInt8.self)
            p.storeBytes(of: UInt8(0x30 + v % 10), toByteOffset: 2 * v + 1, as: UInt8.self)
        }
        var power: UInt64 = 1
        for i in 0..<20 {
            p.storeBytes(of: power, toByteOffset: 200 + 8 * i, as: UInt64.self)
            power = power &* 10
        }
        return UnsafePointer(p.assumingMemoryBound(to: UInt8.self))
    }()

    /// Decimal digits of `v`.
    @inline(__always)
    static func integer(_ v: Int64, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        integer(v, at: p, tables: tables)
    }

    @inline(__always)
    static func integer(_ v: Int64, at p: UnsafeMutablePointer<UInt8>, tables: UnsafePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var p = p
        if v < 0 {
            p.pointee = 0x2D
            p += 1
        }
        var n = v.magnitude
        // Digits from the bit length (log10 2 ≈ 1233 / 4096), corrected by one comparison.
        let powers = UnsafeRawPointer(tables + 200)
        let bits = 64 &- n.leadingZeroBitCount
        var digits = (bits &* 1233) >> 12
        if digits < 20, n >= powers.load(fromByteOffset: 8 * digits, as: UInt64.self) { digits &+= 1 }
        if digits == 0 { digits = 1 }
        var i = digits
        while n >= 1 << 32 {
            let r = Int(truncatingIfNeeded: n % 100)
            n /= 100
            i &-= 2
            p[i] = tables[2 &* r]
            p[i &+ 1] = tables[2 &* r &+ 1]
        }
        var n32 = UInt32(truncatingIfNeeded: n)  // the rest in 32-bit arithmetic: cheaper divisions
        while n32 >= 100 {
            let r = Int(truncatingIfNeeded: n32 % 100)
            n32 /= 100
            i &-= 2
            p[i] = tables[2 &* r]
            p[i &+ 1] = tables[2 &* r &+ 1]
        }
        n = UInt64(n32)
        if n >= 10 {
            p[i &- 2] = tables[2 &* Int(truncatingIfNeeded: n)]
            p[i &- 1] = tables[2 &* Int(truncatingIfNeeded: n) &+ 1]
        } else {
            p[i &- 1] = UInt8(truncatingIfNeeded: 0x30 &+ n)
        }
        return p + digits
    }

    /// The value as logd has always written it: integral values below 10^15 as `<int>.0`
    /// (`-0.0` for negative zero), everything else as Swift's `description` (the shortest text
    /// that reads back to the same double), produced by the runtime's own formatter without
    /// building a `String`.
    @inline(__always)
    static func double(_ d: Double, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        double(d, at: p, tables: tables)
    }

    @inline(__always)
    static func double(_ d: Double, at p: UnsafeMutablePointer<UInt8>, tables: UnsafePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var p = p
        if abs(d) < 1e15, Double(Int64(d)) == d {  // integral (NaN fails the first test)
            if d == 0, d.sign == .minus {
                p.pointee = 0x2D
                p += 1
            }
            p = integer(Int64(d), at: p, tables: tables)
            p[0] = 0x2E
            p[1] = 0x30
            return p + 2
        }
        if d.isNaN {  // `description` drops a NaN's sign
            p[0] = 0x6E
            p[1] = 0x61
            p[2] = 0x6E
            return p + 3
        }
        // The formatter writes only the non-zero digits: the buffer starts as '0's.
        p.update(repeating: 0x30, count: 32)
        let n = p.withMemoryRebound(to: CChar.self, capacity: 32) { swiftFloat64ToString($0, 32, d, false) }
        return p + Int(n)
    }
}

/// The Swift runtime's shortest round-trip formatter behind `Double.description`
/// (SwiftShims RuntimeShims.h: `uint64_t swift_float64ToString(char *, size_t, double, bool)`),
/// exported by libswiftCore. `MetricLineTests` holds it byte-identical to `description`.
@_extern(c, "swift_float64ToString")
func swiftFloat64ToString(_ buffer: UnsafeMutablePointer<CChar>, _ length: Int, _ value: Double, _ debug: Bool) -> UInt64
