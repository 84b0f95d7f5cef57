import Testing
import Wire

@Suite("Round trips and incremental decoding")
struct RoundTripTests {
    @Test("2,000 random records of every kind decode to what was encoded (seed 0x10ad)")
    func randomRoundTrip() throws {
        var gen = RandomRecords(seed: 0x10AD)
        for _ in 0..<2_000 {
            let record = gen.record()
            let bytes = try FrameEncoder().frame(record)
            let decoder = FrameDecoder()
            let result = try bytes.withUnsafeBytes { try decoder.decode($0) }
            #expect(result?.record == record)
            #expect(result?.consumed == bytes.count)
        }
    }

    @Test("a stream fed whole, byte by byte and in random splits gives the same records", arguments: [1, 2, 3])
    func splitFeeding(seed: UInt64) throws {
        var gen = RandomRecords(seed: seed)
        let records = (0..<300).map { _ in gen.record() }
        let stream = try encodeAll(records)

        var whole = StreamDecoder()
        whole.feed(stream)
        #expect(try drain(&whole) == records)

        var byByte = StreamDecoder()
        var got: [Record] = []
        for b in stream {
            byByte.feed([b])
            got += try drain(&byByte)
        }
        #expect(got == records)
        try byByte.finish()

        var rng = SplitMix64(seed: seed)
        var split = StreamDecoder()
        got = []
        var i = 0
        while i < stream.count {
            let n = min(stream.count - i, Int.random(in: 1...97, using: &rng))
            split.feed(stream[i..<(i + n)])
            got += try drain(&split)
            i += n
        }
        #expect(got == records)
        try split.finish()
    }

    @Test("a partial frame is not consumed: decode returns nil until the last byte arrives")
    func partialFrameNotConsumed() throws {
        let bytes = try FrameEncoder().frame(.log(LogLine(level: .info, timestamp: 1, logger: "a", message: "hello")))
        for n in 0..<bytes.count {
            let result = try Array(bytes.prefix(n)).withUnsafeBytes { try FrameDecoder().decode($0) }
            #expect(result == nil, "decoded a record from \(n) of \(bytes.count) bytes")
        }
    }

    @Test("the hot-path metric store writes the same 33 bytes as the encoder")
    func metricStoreMatchesEncoder() throws {
        var gen = RandomRecords(seed: 33)
        for _ in 0..<500 {
            let m = gen.metric()
            var raw = [UInt8](repeating: 0xAA, count: Metric.frameBytes)
            raw.withUnsafeMutableBytes { m.store(frameAt: $0.baseAddress!) }
            #expect(raw == (try FrameEncoder().frame(.metric(m))))
        }
    }

    @Test("unknown kinds from a newer minor version are skipped whole when asked")
    func skipUnknownKinds() throws {
        let unknown = le32(4) + [0x5A, 1, 2, 3]
        let ack = try FrameEncoder().frame(.ack(durableThrough: 9))
        var decoder = FrameDecoder()
        decoder.skipUnknownKinds = true
        let (records, error) = decodeStream(unknown + ack, decoder: decoder)
        #expect(error == nil)
        #expect(records == [.unknown(kind: 0x5A, bodyBytes: 3), .ack(durableThrough: 9)])
        #expect(FrameKind.isNumbered(0x5A))
        #expect(!FrameKind.isNumbered(FrameKind.metricKey.rawValue))
        #expect(decodeStream(unknown + ack).error == .unknownKind(0x5A))
    }

    @Test("the encoder refuses what the decoder would refuse, and leaves its output untouched")
    func encoderChecksLimits() throws {
        var out: [UInt8] = [1, 2, 3]
        let longName = String(repeating: "x", count: 5000)
        #expect(throws: WireError.stringTooLong(field: "metric_key.key", length: 5000, limit: 4096)) {
            try FrameEncoder().encode(.metricKey(MetricKey(id: 1, key: longName, context: "training")), into: &out)
        }
        #expect(out == [1, 2, 3])
        var deep: Value = .null
        for _ in 0..<70 { deep = .list([deep]) }
        #expect(throws: WireError.nestingTooDeep(limit: 64)) { try FrameEncoder().encode(.params(deep), into: &out) }
        let big = Value.string(String(repeating: "y", count: 200_000))
        let small = FrameEncoder(limits: WireLimits(maxFrameBytes: 100_000))
        #expect(throws: WireError.frameTooLarge(length: 200_006, limit: 100_000)) {
            try small.encode(.params(big), into: &out)
        }
        #expect(out == [1, 2, 3])
    }

    @Test("params merge: later values override earlier ones at the same key path, maps merge")
    func paramsMerge() {
        let a: Value = ["optimizer": ["type": "SGD", "lr": 0.1], "epochs": 10]
        let b: Value = ["optimizer": ["lr": 0.01, "momentum": 0.9], "layers": [1, 2]]
        let merged: Value = [
            "optimizer": ["type": "SGD", "lr": 0.01, "momentum": 0.9], "epochs": 10, "layers": [1, 2],
        ]
        #expect(a.merging(b) == merged)
        #expect(a.merging(["optimizer": "adam"]) == ["optimizer": "adam", "epochs": 10])
    }

    private func drain(_ s: inout StreamDecoder) throws -> [Record] {
        var out: [Record] = []
        while let r = try s.next() { out.append(r) }
        return out
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    @Test("known vectors: empty, abc, the 448-bit message, a million a's, split updates")
    func vectors() {
        #expect(SHA256.hash([]).description == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).description == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).description
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var s = SHA256()
        let chunk = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { s.update(chunk) }
        #expect(s.finalize().description == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var split = SHA256()
        let text = Array("The quick brown fox jumps over the lazy dog".utf8)
        split.update(Array(text[0..<7]))
        split.update(Array(text[7...]))
        #expect(split.finalize() == SHA256.hash(text))
    }
}
