/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord frames carry.
///
/// Slicing-by-8: eight 256-entry tables, eight bytes per step. The daemon checksums only the
/// ~28 bytes of a scalar event that change per record (ScalarTag); docs/PERFORMANCE.md has the
/// measured cost. No hardware CRC instruction: the module stays pure Swift and portable.
public enum CRC32C {
    /// `table[k * 256 + b]`: the CRC of byte `b` followed by `k` zero bytes. Raw memory, built once:
    /// the per-record path reads it with no array retain or bounds check.
    /// Written once before first use (a lazy global), read-only after: safe to share.
    nonisolated(unsafe) static let table: UnsafePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            var c = t[i]
            for k in 1..<8 {
                c = t[Int(c & 0xFF)] ^ (c >> 8)
                t[k * 256 + i] = c
            }
        }
        return UnsafePointer(t)
    }()

    /// One slicing-by-8 step: the register `c` after eight more bytes (`lo`, `hi` little-endian).
    @inline(__always)
    static func step8(_ t: UnsafePointer<UInt32>, _ c: UInt32, _ lo: UInt32, _ hi: UInt32) -> UInt32 {
        let x = lo ^ c
        return t[7 * 256 + Int(x & 0xFF)] ^ t[6 * 256 + Int((x >> 8) & 0xFF)]
            ^ t[5 * 256 + Int((x >> 16) & 0xFF)] ^ t[4 * 256 + Int(x >> 24)]
            ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
            ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
    }

    /// The CRC-32C of `count` bytes at `bytes`, continuing from `crc` (0 to start): `checksum(b,
    /// crc: checksum(a))` is the checksum of `a` followed by `b`.
    @inline(__always)
    public static func checksum(_ bytes: UnsafeRawPointer, count: Int, crc: UInt32 = 0) -> UInt32 {
        let t = table
        var c = ~crc
        var p = bytes
        var n = count
        while n >= 8 {
            c = step8(
                t, c, UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)),
                UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            p += 8
            n -= 8
        }
        while n > 0 {
            c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
            p += 1
            n -= 1
        }
        return ~c
    }

    /// The CRC-32C of a little-endian UInt64 (a TFRecord's length field).
    @inline(__always)
    public static func checksum(littleEndian v: UInt64) -> UInt32 {
        ~step8(table, ~0, UInt32(truncatingIfNeeded: v), UInt32(truncatingIfNeeded: v >> 32))
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: $0.count) }
    }

    /// TFRecord's masked form: rotate right by 15 bits and add a constant (so a CRC of data that
    /// holds CRCs does not degenerate).
    @inline(__always)
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
