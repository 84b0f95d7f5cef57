// libFuzzer target for the Wire decoder.
//
// Fuzz build (libFuzzer provides main; SwiftPM compiles this file with -parse-as-library):
//   swift build --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address \
//       -Xswiftc -sanitize=fuzzer,address --product wire-fuzz
//   .build-fuzz/debug/wire-fuzz -max_total_time=60 fuzz-corpus vectors/wire-v1
// Normal build: `wire-fuzz FILE...` replays files through the decoder (what the tests do).
//
// This file must hold no top-level statements: the replay runs from a global initializer,
// which a normal build runs eagerly and a fuzz build never touches.
import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// Feeds one input to the decoder twice: as a raw stream, and as the body of a producer
/// session after a valid HELLO (so the fuzzer reaches every record kind quickly).
func decodeEverything(_ bytes: UnsafeRawBufferPointer) -> Int {
    var decoded = 0
    var stream = StreamDecoder()
    stream.feed(bytes)
    while case .some(.some) = try? stream.next() { decoded += 1 }
    var lenient = StreamDecoder(decoder: FrameDecoder(limits: WireLimits(maxFrameBytes: 4096), skipUnknownKinds: true))
    lenient.feed(bytes)
    while case .some(.some) = try? lenient.next() { decoded += 1 }
    return decoded
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = decodeEverything(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

func replay(_ paths: ArraySlice<String>) -> Int {
    for path in paths {
        guard let f = fopen(path, "rb") else {
            print("wire-fuzz: cannot open \(path)")
            continue
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        fclose(f)
        let n = bytes.withUnsafeBytes { decodeEverything($0) }
        print("\(path): \(bytes.count) bytes, \(n) records")
    }
    return paths.count
}

let replayed = replay(CommandLine.arguments.dropFirst())
