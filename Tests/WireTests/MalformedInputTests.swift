import Testing
import Wire

@Suite("Malformed input")
struct MalformedInputTests {
    @Test("a 4 GiB length prefix is refused after 4 bytes, before the body arrives")
    func hugeLengthRefusedEarly() {
        let decoder = FrameDecoder()
        #expect(throws: WireError.frameTooLarge(length: .max, limit: 1 << 20)) {
            try [UInt8]([0xFF, 0xFF, 0xFF, 0xFF]).withUnsafeBytes { try decoder.decode($0) }
        }
    }

    @Test("a collection claiming billions of elements fails before anything is reserved")
    func hugeCountsRefused() {
        // A metric batch claiming 0x10000000 entries in a 4-byte body: 28 bytes each cannot fit.
        let batch = frame(kind: 0x23, body: le32(0x1000_0000))
        #expect(decodeStream(batch).error?.code == "collection_too_large")
        // A string list (tags) claiming 0xFFFFFFFF strings.
        let tags = frame(kind: 0x20, body: wireString([0x61]) + wireString([0x62]) + wireString([0x63]) + le32(.max))
        #expect(decodeStream(tags).error?.code == "collection_too_large")
        // A map claiming more entries than the limit allows even though bytes would fit.
        let limits = WireLimits(maxCollectionCount: 2)
        let map = frame(kind: 0x21, body: [0x07] + le32(3) + Array(repeating: 0, count: 30))
        #expect(decodeStream(map, decoder: FrameDecoder(limits: limits)).error?.code == "collection_too_large")
    }

    @Test("10,000 mutated valid streams never crash: each decodes or fails with a WireError (seed 7)")
    func mutationsNeverCrash() throws {
        var gen = RandomRecords(seed: 7)
        var rng = SplitMix64(seed: 7)
        var errors = 0
        for _ in 0..<10_000 {
            var bytes = try encodeAll((0..<3).map { _ in gen.record() })
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            if Int.random(in: 0...3, using: &rng) == 0 {
                bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng))
            }
            if decodeStream(bytes).error != nil { errors += 1 }
        }
        #expect(errors > 1_000, "mutations should mostly be detected; got \(errors)")
    }

    /// Each file is `NAME.CODE.bin`: the decoder must end with that WireError code (`ok`: decode
    /// cleanly), never crash. The folder must not be empty: an empty one would assert nothing.
    @Test("replays every regression input kept from fuzzing (vectors/fuzz-regressions), each with its expected outcome")
    func fuzzRegressions() throws {
        let folder = repositoryRoot.appendingPathComponent("vectors/fuzz-regressions")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".bin") }.sorted()
        #expect(files.count >= 10, "the regression inputs are missing from \(folder.path)")
        for file in files {
            let parts = file.split(separator: ".")
            try #require(parts.count == 3, "\(file) is not named NAME.CODE.bin")
            let expected = String(parts[1])
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            let result = decodeStream(bytes)
            #expect((result.error?.code ?? "ok") == expected, "\(file)")
            // The lenient decoder the fuzz target also drives (small limit, unknown kinds skipped).
            let lenient = FrameDecoder(limits: WireLimits(maxFrameBytes: 4096), skipUnknownKinds: true)
            _ = decodeStream(bytes, decoder: lenient)
        }
    }
}

import Foundation
