import Foundation
import Testing

/// The package graph is the architecture (Package.swift, docs/ARCHITECTURE.md): only the daemon
/// target imports libuv, so logctl and the readers never link it.
@Suite("package graph")
struct PackageGraphTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Package.swift read as text (running `swift package` from inside `swift test` would wait
    /// on the build folder's lock): each target declaration's name and the names in its
    /// dependency list.
    static func targetDependencies() throws -> [String: [String]] {
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var deps: [String: [String]] = [:]
        for chunk in manifest.components(separatedBy: "arget(").dropFirst() {
            let quoted = chunk.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            guard let name = quoted.first else { continue }
            var list: [String] = []
            if let open = chunk.range(of: "dependencies: [") {
                let rest = chunk[open.upperBound...]
                let body = rest[..<(rest.firstIndex(of: "]") ?? rest.endIndex)]
                list = body.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
                    .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            }
            deps[name] = list
        }
        return deps
    }

    /// Whether target `from` depends on `to`, directly or through other targets.
    static func reaches(_ deps: [String: [String]], _ from: String, _ to: String, _ seen: inout Set<String>) -> Bool {
        guard seen.insert(from).inserted else { return false }
        return (deps[from] ?? []).contains { $0 == to || reaches(deps, $0, to, &seen) }
    }

    private func run(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.currentDirectoryURL = Self.root
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("only LogdCore depends on CLibUV; LogdRead, LogdSystem, LogSDK and logctl do not reach it")
    func onlyTheDaemonImportsLibUV() throws {
        let deps = try Self.targetDependencies()
        func reaches(_ from: String, _ to: String, _ seen: inout Set<String>) -> Bool { Self.reaches(deps, from, to, &seen) }
        let direct = deps.filter { $0.value.contains("CLibUV") }.map(\.key)
        #expect(direct == ["LogdCore"], "\(deps)")
        for name in ["LogdRead", "LogdSystem", "LogSDK", "Wire", "logctl", "wire-producer", "TensorBoardEvents"] {
            var seen = Set<String>()
            #expect(!reaches(name, "CLibUV", &seen), "\(name) reaches CLibUV")
            #expect(deps[name] != nil, "\(name) is a target")
        }
    }

    @Test("TensorBoardEvents is pure Swift on Wire alone: the daemon and logctl share it without I/O or libraries")
    func tensorBoardEventsDependsOnWireOnly() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        #expect(manifest.contains("name: \"TensorBoardEvents\", dependencies: [\"Wire\"]"))
        for file in ["CRC32C.swift", "Events.swift", "Proto.swift"] {
            let text = try String(
                contentsOf: Self.root.appendingPathComponent("Sources/TensorBoardEvents/" + file), encoding: .utf8)
            #expect(!text.contains("import Glibc") && !text.contains("import Foundation"), "\(file) does I/O")
        }
    }

    @Test("ldd: logctl links no libuv, logd does")
    func logctlLinksNoLibUV() throws {
        let logctl = try run(["ldd", DaemonHarness.tool("logctl")])
        let logd = try run(["ldd", DaemonHarness.tool("logd")])
        #expect(logd.contains("libuv"), "the check can see libuv: \(logd)")
        #expect(!logctl.contains("libuv"), "\(logctl)")
    }
}
