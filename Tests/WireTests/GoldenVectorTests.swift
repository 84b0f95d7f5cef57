import Foundation
import Testing
import Wire

extension GoldenVector: CustomTestStringConvertible {
    var testDescription: String { name }

    var bytes: [UInt8] {
        switch expect {
        case .records(let records): try! encodeAll(records)
        case .error(_, let bytes, _): bytes
        }
    }

    /// The JSON document written beside the `.bin` file.
    var document: Value {
        var fields: [(key: String, value: Value)] = [
            (key: "name", value: .string(name)),
            (key: "description", value: .string(description)),
            (key: "protocol", value: "1.0"),
            (key: "bytes", value: .int(Int64(bytes.count))),
        ]
        switch expect {
        case .records(let records):
            fields.append((key: "expect", value: "ok"))
            fields.append((key: "records", value: .list(records.map(\.described))))
        case .error(let code, let bytes, let before):
            let decoded = decodeStream(bytes).records.prefix(before)
            fields.append((key: "expect", value: "error"))
            fields.append((key: "error", value: .string(code)))
            fields.append((key: "records", value: .list(decoded.map(\.described))))
        }
        return .map(fields)
    }
}

@Suite("Golden vectors (vectors/wire-v1)")
struct GoldenVectorTests {
    static let writing = ProcessInfo.processInfo.environment["LOGD_WRITE_VECTORS"] == "1"

    @Test("each vector's bytes and description match the encoder and decoder", arguments: goldenVectors)
    func vectorMatches(_ v: GoldenVector) throws {
        let bin = vectorsFolder.appendingPathComponent(v.name + ".bin")
        let json = vectorsFolder.appendingPathComponent(v.name + ".json")
        let documentText = v.document.jsonText(pretty: true) + "\n"
        if Self.writing {
            try FileManager.default.createDirectory(at: vectorsFolder, withIntermediateDirectories: true)
            try Data(v.bytes).write(to: bin)
            try documentText.write(to: json, atomically: true, encoding: .utf8)
        }
        let onDisk = try [UInt8](Data(contentsOf: bin))
        #expect(onDisk == v.bytes, "encoder output differs from \(v.name).bin")
        #expect(try String(contentsOf: json, encoding: .utf8) == documentText)
        _ = try JSONSerialization.jsonObject(with: Data(contentsOf: json))

        let (records, error) = decodeStream(onDisk)
        switch v.expect {
        case .records(let expected):
            #expect(error == nil)
            #expect(records == expected)
        case .error(let code, _, let before):
            #expect(error?.code == code, "got \(String(describing: error))")
            #expect(records.count == before)
        }
    }

    @Test("every file in the vectors folder belongs to a vector")
    func noOrphanFiles() throws {
        let names = Set(goldenVectors.map(\.name))
        let files = try FileManager.default.contentsOfDirectory(atPath: vectorsFolder.path)
        #expect(!files.isEmpty)
        for file in files {
            let base = (file as NSString).deletingPathExtension
            let ext = (file as NSString).pathExtension
            #expect(names.contains(base) && ["bin", "json"].contains(ext), "orphan vector file \(file)")
        }
        #expect(files.count == 2 * names.count)
    }

    @Test("the vectors cover every frame kind and every decode error")
    func coverage() {
        var kinds = Set<UInt8>()
        var codes = Set<String>()
        for v in goldenVectors {
            switch v.expect {
            case .records(let records): kinds.formUnion(records.map(\.kind))
            case .error(let code, _, _): codes.insert(code)
            }
        }
        #expect(kinds == Set(FrameKind.allCases.map(\.rawValue)))
        let allCodes: [WireError] = [
            .emptyFrame, .frameTooLarge(length: 0, limit: 0), .truncatedBody(kind: 0), .trailingBytes(kind: 0, count: 0),
            .unknownKind(0), .badMagic, .unsupportedVersion(major: 0, minor: 0), .invalidUTF8(field: ""),
            .stringTooLong(field: "", length: 0, limit: 0), .nestingTooDeep(limit: 0),
            .collectionTooLarge(field: "", count: 0, limit: 0), .invalidEnum(field: "", value: 0),
            .truncatedStream(bufferedBytes: 0),
        ]
        #expect(codes == Set(allCodes.map(\.code)))
    }
}
