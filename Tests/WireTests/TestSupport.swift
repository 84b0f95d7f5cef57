import Foundation
import Wire

/// The repository root, found from this file's path (Tests/WireTests/TestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let vectorsFolder = repositoryRoot.appendingPathComponent("vectors/wire-v1")

/// Decodes `bytes` as a whole stream: the records before the first error, and that error.
func decodeStream(_ bytes: [UInt8], decoder: FrameDecoder = FrameDecoder()) -> (records: [Record], error: WireError?) {
    var stream = StreamDecoder(decoder: decoder)
    stream.feed(bytes)
    var records: [Record] = []
    do {
        while let r = try stream.next() { records.append(r) }
        try stream.finish()
        return (records, nil)
    } catch {
        return (records, error)
    }
}

func encodeAll(_ records: [Record]) throws -> [UInt8] {
    var out: [UInt8] = []
    for r in records { try FrameEncoder().encode(r, into: &out) }
    return out
}
