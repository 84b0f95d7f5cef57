import Foundation
import Testing

/// LogSDK is linked into training processes: it must never pull in libuv or libyaml (or anything
/// but Wire and the C library). These tests read the package graph and the SDK's own sources.
@Suite("LogSDK dependencies")
struct DependencyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Target name → names of the targets and products it depends on, from `swift package dump-package`.
    static func targetGraph() throws -> [String: [String]] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("logd-dump-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["swift", "package", "--package-path", root.path, "--scratch-path", scratch.path, "dump-package"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let targets = try #require(json["targets"] as? [[String: Any]])
        var graph: [String: [String]] = [:]
        for t in targets {
            let name = try #require(t["name"] as? String)
            let deps = (t["dependencies"] as? [[String: Any]]) ?? []
            graph[name] = deps.compactMap { dep in
                for key in ["byName", "target", "product"] {
                    if let list = dep[key] as? [Any], let first = list.first as? String { return first }
                }
                return nil
            }
        }
        return graph
    }

    static func closure(of target: String, in graph: [String: [String]]) -> Set<String> {
        var seen = Set<String>()
        var stack = [target]
        while let t = stack.popLast() {
            for d in graph[t] ?? [] where seen.insert(d).inserted { stack.append(d) }
        }
        return seen
    }

    @Test("LogSDK's dependency closure is Wire alone: no CLibUV, no CYAML")
    func sdkClosure() throws {
        let graph = try Self.targetGraph()
        #expect(graph["LogSDK"] != nil)
        let deps = Self.closure(of: "LogSDK", in: graph)
        #expect(deps == ["Wire"], "LogSDK depends on \(deps.sorted())")
        #expect(Self.closure(of: "Wire", in: graph).isEmpty)
        // The check can fail: the daemon's library does reach both C libraries.
        #expect(Self.closure(of: "LogdCore", in: graph).isSuperset(of: ["CLibUV", "CYAML"]))
    }

    @Test("LogSDK and Wire sources import only Wire and the C library")
    func sdkImports() throws {
        let allowed: Set<String> = ["Wire", "Glibc", "Musl", "Darwin", "Synchronization"]
        for folder in ["Sources/LogSDK", "Sources/Wire"] {
            let dir = Self.root.appendingPathComponent(folder)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
            #expect(!files.isEmpty)
            for file in files {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ").map(String.init)
                    guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
                        words[..<i].allSatisfy({ $0.hasPrefix("@") || $0 == "public" || $0 == "internal" })
                    else { continue }
                    #expect(allowed.contains(words[i + 1]), "\(folder)/\(file) imports \(words[i + 1])")
                }
            }
        }
    }
}
