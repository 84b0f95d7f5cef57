import Testing
import Wire

@testable import TensorBoardEvents

private func hex(_ b: [UInt8]) -> String {
    b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

@Suite("TensorBoard event encoding")
struct EncoderTests {
    @Test("CRC-32C known vectors (RFC 3720 B.4 and the usual check value)")
    func crc32cVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test("slicing-by-8 agrees with the bytewise definition at every length and alignment")
    func crc32cSlicingMatchesBitwise() {
        func bitwise(_ b: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in b {
                c ^= UInt32(x)
                for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            }
            return ~c
        }
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        let data: [UInt8] = (0..<300).map { _ in
            rng = rng &* 6_364_136_223_846_793_005 &+ 1
            return UInt8(truncatingIfNeeded: rng >> 33)
        }
        for offset in 0..<9 {
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] {
                let slice = data[offset..<(offset + length)]
                let fast = slice.withUnsafeBytes { CRC32C.checksum($0.baseAddress!, count: $0.count) }
                #expect(fast == bitwise(slice), "offset \(offset) length \(length)")
            }
        }
        // Continuing a CRC over two parts gives the CRC of the whole.
        let a = data[0..<37].withUnsafeBytes { CRC32C.checksum($0.baseAddress!, count: $0.count) }
        let ab = data[37..<100].withUnsafeBytes { CRC32C.checksum($0.baseAddress!, count: $0.count, crc: a) }
        #expect(ab == bitwise(data[0..<100]))
    }

    @Test("TFRecord framing and the file_version event match TensorBoard's own RecordWriter byte for byte")
    func framing() {
        let out = EventBuffer(capacity: 16)
        out.appendRecord(TensorBoardEvent.fileVersionEvent(wallTime: 1.5))
        // tensorboard.summary.writer.record_writer.RecordWriter on Event(wall_time=1.5, file_version="brain.Event:2")
        #expect(hex(out.bytes) == "1800000000000000a37f4b2209000000000000f83f1a0d627261696e2e4576656e743a322a28646c")
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
    }

    @Test("a scalar event: the framed record's payload is the Event protobuf, length and CRCs check")
    func scalarEvent() {
        // Verified with tensorboard's event_pb2 (fields summary first, then wall_time and step: any
        // order is valid protobuf): Event(wall_time=1.25, step=300, summary{value{tag
        // "training/loss", simple_value 0.1 (float32)}}).
        let payload = TensorBoardEvent.scalar(tag: "training/loss", wallTime: 1.25, step: 300, value: 0.1)
        #expect(hex(payload) == "2a160a140a0d747261696e696e672f6c6f737315cdcccc3d09000000000000f43f10ac02")
        let out = EventBuffer(capacity: 8)  // grows
        for _ in 0..<100 { out.appendRecord(payload) }
        let b = out.bytes
        #expect(b.count == 100 * (payload.count + 16))
        let length = b[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        #expect(length == UInt64(payload.count))
        func le32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[i + $1]) << (8 * UInt32($1)) } }
        #expect(le32(8) == CRC32C.masked(CRC32C.checksum(Array(b[0..<8]))))
        #expect(le32(12 + payload.count) == CRC32C.masked(CRC32C.checksum(payload)))
    }

    @Test("ScalarTag's framed record: the CRC continued from the head's equals a whole-record CRC")
    func scalarTagFraming() {
        let t = ScalarTag(tag: "validation/accuracy/rank3")
        defer { t.deallocate() }
        for step in [Int64(0), 1, 1 << 40, -7] {
            let out = EventBuffer(capacity: 16)
            t.append(to: out, wallTime: 1_795_864_095.25, step: step, value: -0.0)
            let b = out.bytes
            let payload = Array(b[12..<(b.count - 4)])
            let whole = EventBuffer(capacity: 16)
            whole.appendRecord(payload)
            #expect(whole.bytes == b, "step \(step)")
        }
    }

    @Test("negative steps and long tags: varints of ten bytes and of two")
    func varints() {
        var p = Proto()
        p.varint(UInt64(bitPattern: -1))
        #expect(p.bytes == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(Proto.varintSize(UInt64(bitPattern: -1)) == 10)
        #expect(Proto.varintSize(127) == 1 && Proto.varintSize(128) == 2)
        let tag = String(repeating: "k", count: 300)
        let payload = TensorBoardEvent.scalar(tag: tag, wallTime: 0, step: -5, value: 1)
        // summary key + 2-byte length, value key + 2-byte length, tag, simple_value, wall_time, step
        #expect(payload.count == 1 + 2 + 1 + 2 + (1 + 2 + 300) + 5 + 9 + 11)
    }

    @Test("tags: context/key, source as a sub-tag, rank suffix for ranks other than 0")
    func tags() {
        #expect(TensorBoardTags.scalar(context: "training", key: "loss", source: "", rank: 0) == "training/loss")
        #expect(TensorBoardTags.scalar(context: "training", key: "loss", source: "", rank: 1) == "training/loss/rank1")
        #expect(TensorBoardTags.scalar(context: "", key: "lr", source: "", rank: 0) == "lr")
        #expect(
            TensorBoardTags.scalar(context: "training", key: "grad_norm", source: "encoder.block 1", rank: 2)
                == "training/grad_norm/encoder.block 1/rank2")
        #expect(
            TensorBoardFileName.segment(startSeconds: 1_764_000_000, host: "gpu-node-3.lab", number: 12)
                == "events.out.tfevents.1764000000.gpu-node-3_lab.logd.000012")
    }

    @Test("config.yaml flattened to hparams: dotted names, typed values, lists as JSON")
    func hparamsFlattening() {
        let config: Value = [
            "lr": .double(0.1), "epochs": .int(3), "shuffle": .bool(true), "name": .string("yes"),
            "optimizer": ["kind": .string("sgd"), "momentum": .double(0.9)], "layers": [.int(64), .int(32)],
        ]
        let h = TensorBoardEvent.hparams(fromConfig: config)
        #expect(h.map(\.0) == ["lr", "epochs", "shuffle", "name", "optimizer.kind", "optimizer.momentum", "layers"])
        #expect(h[0].1 == .number(0.1) && h[1].1 == .number(3) && h[2].1 == .bool(true) && h[3].1 == .string("yes"))
        #expect(h[6].1 == .string("[64,32]"))
        #expect(TensorBoardEvent.hparams(fromConfig: config, limit: 2).count == 2)
    }

    @Test("PNG header: size and colorspace")
    func png() {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        png += Array("IHDR".utf8) + [0, 0, 1, 0, 0, 0, 0, 32, 8, 6, 0, 0, 0, 0, 0, 0, 0]
        let info = TensorBoardEvent.pngInfo(png)
        #expect(info?.width == 256 && info?.height == 32 && info?.colorspace == 4)
        #expect(TensorBoardEvent.pngInfo(Array("not a png at all, really not a png".utf8)) == nil)
    }
}

@Suite("TensorBoard event file sizes")
struct EventFileSizeTests {
    @Test("a new event file (its file_version record) is 40 bytes: no longer than metrics.csv's header")
    func firstRecordSize() {
        let out = EventBuffer()
        out.appendRecord(TensorBoardEvent.fileVersionEvent(wallTime: 1_795_864_095.123))
        #expect(out.count == 40)
        #expect(out.count <= "time,step,context,key,value,rank,source\n".utf8.count)
    }
}
