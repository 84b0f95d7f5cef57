import Foundation
import Testing

/// docs/WIRE_PROTOCOL.md and docs/CONTROL_PROTOCOL.md carry byte-by-byte examples encoded by
/// hand. Each sits in a ```hex block after a `<!-- vector: NAME -->` line; this test holds every
/// such block to the golden vector of that name, so the documents cannot drift from the code.
@Suite("Protocol documents")
struct ProtocolDocTests {
    static func examples(in doc: String) -> [(vector: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        let lines = doc.components(separatedBy: "\n")
        var i = 0
        while i < lines.count {
            let line = lines[i].trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("<!-- vector:"), line.hasSuffix("-->") {
                let name = line.dropFirst("<!-- vector:".count).dropLast(3).trimmingCharacters(in: .whitespaces)
                var j = i + 1
                while j < lines.count, lines[j].trimmingCharacters(in: .whitespaces).isEmpty { j += 1 }
                guard j < lines.count, lines[j].trimmingCharacters(in: .whitespaces) == "```hex" else {
                    out.append((name, []))
                    i += 1
                    continue
                }
                var bytes: [UInt8] = []
                j += 1
                while j < lines.count, !lines[j].hasPrefix("```") {
                    for token in lines[j].split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                        bytes.append(UInt8(token, radix: 16) ?? 0xEE)
                    }
                    j += 1
                }
                out.append((name, bytes))
                i = j
            }
            i += 1
        }
        return out
    }

    @Test(
        "every hand-encoded example in docs/ matches its golden vector byte for byte",
        arguments: ["docs/WIRE_PROTOCOL.md", "docs/CONTROL_PROTOCOL.md"])
    func examplesMatchVectors(_ path: String) throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
        let examples = Self.examples(in: doc)
        #expect(!examples.isEmpty, "\(path) has no machine-checked example")
        for (name, bytes) in examples {
            let vector = try [UInt8](Data(contentsOf: vectorsFolder.appendingPathComponent(name + ".bin")))
            #expect(bytes == vector, "\(path): example '\(name)' differs from vectors/wire-v1/\(name).bin")
        }
    }

    @Test("the wire document shows the metric and handshake frames")
    func requiredExamples() throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/WIRE_PROTOCOL.md"), encoding: .utf8)
        let names = Set(Self.examples(in: doc).map(\.vector))
        #expect(names.isSuperset(of: ["metric", "hello_producer"]))
    }
}
