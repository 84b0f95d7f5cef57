import Foundation
import LogdCore
import Testing
import Wire
import LogdRead
import LogdSystem

// Packaging (issue 7): socket activation, Type=notify, the .deb, and the systemd units.
// A check that cannot run here fails with what to install (scripts/install-deps.sh installs it).

/// Helpers of the packaging tests (private: other suites' helpers live in DaemonTests).
private enum Pkg {
    static let root: String = {
        // Tests/LogdCoreTests/PackagingTests.swift → the repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    /// An executable on PATH or in the usual system directories, else nil.
    static func systemTool(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        return dirs.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }

    static func requireTool(_ name: String, package: String) -> String? {
        guard let path = systemTool(name) else {
            Issue.record("\(name) not found: install the Debian package '\(package)' (bash scripts/install-deps.sh)")
            return nil
        }
        return path
    }

    /// Runs a command to completion; stdout and stderr together.
    static func runCommand(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        directory: String? = nil
    ) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The .deb's Debian metadata (issue 19): a machine-readable Apache-2.0 copyright beside a
    /// LICENSE with the full text, a changelog naming this version, md5sums that verify every
    /// shipped file, Depends computed from the binaries' shared libraries (dpkg-shlibdeps, and the
    /// ldd fallback), and, where lintian is installed, no lintian error.
    static func checkDebianMetadata(deb: String, dpkgDeb: String, version: String, scratch: String) throws {
        let license = try String(contentsOfFile: root + "/LICENSE", encoding: .utf8)
        for phrase in [
            "Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS",
            "APPENDIX: How to apply the Apache License to your work.",
        ] {
            #expect(license.contains(phrase), "LICENSE lacks \(phrase)")
        }
        let data = scratch + "/data", control = scratch + "/control"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        #expect(try runCommand(dpkgDeb, ["-x", deb, data]).status == 0)
        #expect(try runCommand(dpkgDeb, ["-e", deb, control]).status == 0)

        let copyright = try String(contentsOfFile: data + "/usr/share/doc/logd/copyright", encoding: .utf8)
        #expect(copyright.hasPrefix("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"))
        #expect(copyright.contains("\nFiles: *\n") && copyright.contains("\nLicense: Apache-2.0\n"), "\(copyright)")
        #expect(copyright.contains("/usr/share/common-licenses/Apache-2.0"))

        if let gzip = systemTool("gzip") {
            let log = try runCommand(gzip, ["-dc", data + "/usr/share/doc/logd/changelog.gz"]).output
            #expect(log.hasPrefix("logd (\(version)) "), "changelog's latest entry is not \(version): \(log.prefix(80))")
            #expect(log.contains("\n -- "), "a changelog entry ends with its trailer line")
        }

        // md5sums: every shipped file but the conffile, each sum right.
        let sums = try String(contentsOfFile: control + "/md5sums", encoding: .utf8)
        var listed = Set<String>()
        for line in sums.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else {
                Issue.record("md5sums line: \(line)")
                continue
            }
            let path = String(parts[1].drop(while: { $0 == " " || $0 == "*" }))
            listed.insert(path)
        }
        if let md5sum = systemTool("md5sum") {
            let check = try runCommand(md5sum, ["-c", "--quiet", control + "/md5sums"], directory: data)
            #expect(check.status == 0, "md5sums do not verify: \(check.output)")
        }
        var shipped = Set<String>()
        let walker = FileManager.default.enumerator(atPath: data)
        while let rel = walker?.nextObject() as? String {
            var st = stat()
            if lstat(data + "/" + rel, &st) == 0, st.st_mode & S_IFMT == S_IFREG { shipped.insert(rel) }
        }
        #expect(shipped.contains("usr/bin/logd"))
        #expect(listed == shipped.subtracting(["etc/logd/logd.yaml"]), "md5sums vs files: \(listed.symmetricDifference(shipped))")

        // Depends: the package of every library the binaries link directly (NEEDED) is in it.
        // Shell completions: generated from the binaries, so they know every subcommand.
        let bashCompletion = try String(
            contentsOfFile: data + "/usr/share/bash-completion/completions/logctl", encoding: .utf8)
        for sub in ["status", "flush", "runs", "show", "compare", "tail"] {
            #expect(bashCompletion.contains(sub), "the bash completion lacks \(sub)")
        }
        if let bash = systemTool("bash") {
            let syntax = try runCommand(bash, ["-n", data + "/usr/share/bash-completion/completions/logctl"])
            #expect(syntax.status == 0, "bash completion: \(syntax.output)")
        }

        let depends = try runCommand(dpkgDeb, ["-f", deb, "Depends"]).output
        let linked = try packagesLinked(by: [data + "/usr/bin/logd", data + "/usr/bin/logctl"])
        #expect(linked.isSuperset(of: ["libc6", "libuv1", "libyaml-0-2"]), "\(linked)")
        for pkg in linked { #expect(dependsNames(depends).contains(pkg), "Depends lacks \(pkg): \(depends)") }
        if systemTool("dpkg-shlibdeps") != nil {  // package dpkg-dev; without it build-deb.sh uses ldd
            #expect(depends.contains("libc6 (>= "), "dpkg-shlibdeps gives minimum versions: \(depends)")
        }
        // Without dpkg-shlibdeps: ldd and dpkg -S, which also finds libgcc_s (issue 19's example).
        var env = ProcessInfo.processInfo.environment
        env["LOGD_DEB_SHLIBDEPS"] = "ldd"
        let out = scratch + "/ldd-deb"
        let bash = systemTool("bash") ?? "/bin/bash"
        let built = try runCommand(
            bash, [root + "/packaging/deb/build-deb.sh", out, "--bin-dir", DaemonHarness.buildDirectory.path],
            environment: env)
        #expect(built.status == 0, "build-deb.sh (ldd): \(built.output)")
        let lddDeb = out + "/" + (((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).first ?? "?")
        let lddDepends = dependsNames(try runCommand(dpkgDeb, ["-f", lddDeb, "Depends"]).output)
        #expect(lddDepends.isSuperset(of: linked.union(["libgcc-s1", "adduser"])), "\(lddDepends)")

        if let lintian = systemTool("lintian") {
            let lint = try runCommand(lintian, ["--no-cfg", deb])
            // Known, and not the package's doing: the placeholder maintainer address (until the
            // project names a real one in packaging/deb/control and changelog), and the RUNPATH of
            // the debug binaries these tests package (release builds link the Swift runtime statically).
            let known = ["bogus-mail-host", "bogus-mail-host-in-debian-changelog", "custom-library-search-path"]
            let errors = lint.output.split(separator: "\n").filter { line in
                line.hasPrefix("E: ") && !known.contains { line.contains(": \($0) ") }
            }
            #expect(errors.isEmpty, "lintian errors:\n\(errors.joined(separator: "\n"))")
        }
    }

    /// Package names in a Depends field (versions and alternatives' bars dropped).
    static func dependsNames(_ field: String) -> Set<String> {
        Set(
            field.split(whereSeparator: { ",|".contains($0) }).compactMap {
                $0.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").first.map(String.init)
            })
    }

    /// The Debian packages that own the shared libraries `binaries` name as NEEDED (readelf -d,
    /// resolved with ldd; a library no package owns, such as a toolchain's Swift runtime, is skipped).
    static func packagesLinked(by binaries: [String]) throws -> Set<String> {
        guard let readelf = requireTool("readelf", package: "binutils"), let ldd = requireTool("ldd", package: "libc-bin"),
            let dpkg = requireTool("dpkg", package: "dpkg")
        else { return [] }
        var packages = Set<String>()
        for binary in binaries {
            let needed = try runCommand(readelf, ["-d", binary]).output.split(separator: "\n").compactMap { line -> String? in
                guard line.contains("(NEEDED)"), let a = line.firstIndex(of: "["), let b = line.lastIndex(of: "]") else { return nil }
                return String(line[line.index(after: a)..<b])
            }
            var resolved: [String: String] = [:]
            for line in try runCommand(ldd, [binary]).output.split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                if f.count >= 3, f[1] == "=>", f[2].hasPrefix("/") { resolved[f[0].trimmingCharacters(in: .whitespaces)] = f[2] }
            }
            for soname in needed {
                guard let path = resolved[soname] else { continue }
                let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)).map {
                    $0.hasPrefix("/") ? $0 : (path as NSString).deletingLastPathComponent + "/" + $0
                }
                for candidate in [path, real, "/usr" + path].compactMap({ $0 }) {
                    let owner = try runCommand(dpkg, ["-S", candidate])
                    if owner.status == 0, let name = owner.output.split(separator: ":").first {
                        packages.insert(String(name))
                        break
                    }
                }
            }
        }
        return packages
    }

    /// The listening Unix sockets a process holds: (fd number, bound path), from /proc.
    static func listeningSockets(pid: Int32) -> [(fd: Int, path: String)] {
        var inodes: [String: Int] = [:]
        let fdDir = "/proc/\(pid)/fd"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            guard let fd = Int(name),
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + name),
                target.hasPrefix("socket:[")
            else { continue }
            inodes[String(target.dropFirst(8).dropLast())] = fd
        }
        // /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 = listening.
        let table = (try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)) ?? ""
        var out: [(Int, String)] = []
        for line in table.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 7, f[3] == "00010000", let fd = inodes[String(f[6])] else { continue }
            out.append((fd, f.count >= 8 ? String(f[7]) : ""))
        }
        return out.sorted { $0.0 < $1.0 }
    }
}

extension DaemonTests {
    @Test(
        "socket activation: logd adopts the socket systemd-socket-activate passes, binds none of its own, and records land"
    )
    func socketActivation() throws {
        guard let activate = Pkg.requireTool("systemd-socket-activate", package: "systemd") else { return }
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try FileManager.default.createDirectory(
            atPath: h.root + "/sock", withIntermediateDirectories: false,
            attributes: [.posixPermissions: 0o700])
        // logd is told another path: if it bound a socket of its own, it would be there.
        let ownSocket = h.root + "/own/logd.sock"
        // systemd-socket-activate listens, then execs logd in place on the first connection. It
        // closes every other descriptor first, including the one Foundation's Process watches to see
        // its child exit (which would then block in waitpid until logd exits, and with it every
        // other Process of the test run). So a shell that stays in between owns that descriptor.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = [
            "-c", "\"$@\"; exit $?", "sh", activate, "-l", h.socket,
            DaemonHarness.tool("logd"), "--socket", ownSocket, "--data-root", h.dataRoot, "--log-level", "info",
        ]
        _ = FileManager.default.createFile(atPath: h.stderrPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: h.stderrPath))
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer {
            // Process starts its child in a process group of its own: the shell, the activator, logd.
            if p.isRunning { kill(-p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        var client: ControlClient?
        let deadline = Date().addingTimeInterval(30)
        while client == nil, Date() < deadline, p.isRunning {
            if FileManager.default.fileExists(atPath: h.socket) { client = try? ControlClient(path: h.socket) }
            if client == nil { usleep(50_000) }
        }
        guard let client else {
            Issue.record("logd did not answer on the activated socket \(h.socket): \(h.daemonStderr())")
            return
        }
        let status = try client.request(.status).body
        guard case .int(let pid64)? = status["pid"] else {
            Issue.record("status without pid: \(status.jsonText())")
            return
        }
        let pid = Int32(pid64)
        #expect(
            status["socket"] == .string(h.socket), "status reports the adopted socket's real path: \(status.jsonText())"
        )
        // logd is the activator itself after its exec: the shell's child, holding the passed fd 3.
        let parent = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("PPid:") }?.split(separator: "\t").last.flatMap { Int32($0) }
        #expect(
            parent == p.processIdentifier,
            "logd (pid \(pid)) should run in the activator's process, a child of \(p.processIdentifier)")
        let listening = Pkg.listeningSockets(pid: pid)
        #expect(
            listening.count == 1 && listening.first?.fd == 3 && listening.first?.path == h.socket,
            "logd must listen only on the passed fd 3 (\(h.socket)); it holds \(listening)")
        #expect(!FileManager.default.fileExists(atPath: ownSocket), "logd bound \(ownSocket) of its own")
        #expect(
            !FileManager.default.fileExists(atPath: h.root + "/own"),
            "logd created the directory of a socket it should not bind")
        #expect(h.daemonStderr().contains("listening on an adopted socket"), "\(h.daemonStderr())")

        let producer = try h.producer([
            "--run-id", "activated", "--experiment", "activation", "--metrics", "2000", "--logs", "200",
        ])
        if waitAll([producer]) {
            #expect(producer.terminationStatus == 0)
        } else {
            Issue.record("the producer did not finish: \(h.daemonStderr())")
        }
        try h.flush()
        let dirs = h.runDirectories()
        #expect(dirs.count == 1, "\(dirs)")
        for dir in dirs { Self.verifyRun(h, dir, ranks: [0], metrics: 2000, logs: 200) }

        kill(pid, SIGTERM)
        p.waitUntilExit()
        #expect(
            p.terminationReason == .exit && p.terminationStatus == 0,
            "logd exit: \(p.terminationStatus) \(h.daemonStderr())")
        // The socket belongs to whoever passed it: logd leaves it in place.
        #expect(FileManager.default.fileExists(atPath: h.socket))
    }

    /// A datagram socket bound at `address` (a path, or '@' + an abstract name), for $NOTIFY_SOCKET.
    static func pkgBindNotifySocket(_ address: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonHarness.HarnessError("socket: errno \(errno)") }
        var name = Array(address.utf8)
        let abstract = name.first == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in name.enumerated() { dst[i] = b } }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + name.count + (abstract ? 0 : 1))
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard ok == 0 else {
            close(fd)
            throw DaemonHarness.HarnessError("bind \(address): errno \(errno)")
        }
        // A guard against hanging the suite if logd never sends; not a speed assertion.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func pkgReceiveNotification(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }

    @Test(
        "Type=notify: logd sends READY=1 once it accepts and STOPPING=1 when it drains ($NOTIFY_SOCKET path and abstract)"
    )
    func systemdNotify() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let addresses = [h.root + "/notify.sock", "@logd-test-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"]
        for address in addresses {
            let fd = try Self.pkgBindNotifySocket(address)
            defer { close(fd) }
            var environment = ProcessInfo.processInfo.environment
            environment["NOTIFY_SOCKET"] = address
            let p = Process()
            p.executableURL = URL(fileURLWithPath: DaemonHarness.tool("logd"))
            p.arguments = ["--socket", h.socket, "--data-root", h.dataRoot, "--log-level", "warning"]
            p.environment = environment
            _ = FileManager.default.createFile(atPath: h.stderrPath, contents: nil)
            p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: h.stderrPath))
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            defer {
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                p.waitUntilExit()
            }
            let ready = Self.pkgReceiveNotification(fd)
            #expect(
                ready?.split(separator: "\n").contains("READY=1") == true,
                "\(address): got \(ready ?? "nothing") \(h.daemonStderr())")
            // READY=1 means accepting: the socket must answer now, without retrying.
            let status = try ControlClient(path: h.socket).request(.status)
            #expect(status.status == .ok)
            kill(p.processIdentifier, SIGTERM)
            let stopping = Self.pkgReceiveNotification(fd)
            #expect(
                stopping?.split(separator: "\n").contains("STOPPING=1") == true,
                "\(address): got \(stopping ?? "nothing")")
            p.waitUntilExit()
            #expect(
                p.terminationReason == .exit && p.terminationStatus == 0, "\(address): logd exit \(p.terminationStatus)"
            )
        }
    }

    @Test(
        "the .deb builds with dpkg-deb; it holds the binaries, units, config and man pages; its maintainer scripts create the logd user"
    )
    func debianPackage() throws {
        guard let dpkgDeb = Pkg.requireTool("dpkg-deb", package: "dpkg"),
            Pkg.requireTool("make", package: "make") != nil,
            let bash = Pkg.requireTool("bash", package: "bash"), let sh = Pkg.requireTool("sh", package: "dash")
        else { return }
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let out = h.root + "/deb"
        // The release build is `make deb`'s job; the test packages the debug binaries it already has.
        let built = try Pkg.runCommand(
            bash,
            [
                Pkg.root + "/packaging/deb/build-deb.sh", out,
                "--bin-dir", DaemonHarness.buildDirectory.path,
            ])
        #expect(built.status == 0, "build-deb.sh: \(built.output)")
        let debs = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasSuffix(".deb") }
        guard built.status == 0, debs.count == 1 else {
            Issue.record("expected one .deb in \(out), found \(debs)")
            return
        }
        let deb = out + "/" + debs[0]

        let listing = try Pkg.runCommand(dpkgDeb, ["-c", deb])
        #expect(listing.status == 0)
        let files = Set(
            listing.output.split(separator: "\n").compactMap {
                $0.split(separator: " ").last.map { String($0.dropFirst()) }
            })
        for path in [
            "/usr/bin/logd", "/usr/bin/logctl",
            "/lib/systemd/system/logd.service", "/lib/systemd/system/logd.socket",
            "/usr/lib/systemd/user/logd.service", "/usr/lib/systemd/user/logd.socket",
            "/usr/lib/sysusers.d/logd.conf",
            "/etc/logd/logd.yaml", "/usr/share/doc/logd/examples/logd.yaml", "/usr/share/doc/logd/OPERATIONS.md",
            "/usr/share/man/man8/logd.8.gz", "/usr/share/man/man1/logctl.1.gz",
            "/usr/share/doc/logd/copyright", "/usr/share/doc/logd/changelog.gz",
            "/usr/share/bash-completion/completions/logctl", "/usr/share/zsh/vendor-completions/_logctl",
            "/usr/share/fish/vendor_completions.d/logctl.fish", "/usr/share/bash-completion/completions/logd",
        ] {
            #expect(files.contains(path), "\(path) missing from the .deb:\n\(listing.output)")
        }

        let version = try Pkg.runCommand(DaemonHarness.tool("logd"), ["--version"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last.map(String.init)
        let fields = try Pkg.runCommand(dpkgDeb, ["-f", deb, "Package", "Version", "Depends"])
        #expect(fields.output.contains("Package: logd"))
        #expect(fields.output.contains("Version: \(version ?? "?")"), "version from logd --version: \(fields.output)")
        #expect(fields.output.contains("adduser"), "\(fields.output)")
        try Pkg.checkDebianMetadata(deb: deb, dpkgDeb: dpkgDeb, version: version ?? "?", scratch: h.root + "/meta")

        // Maintainer scripts: valid sh; with stub tools, postinst creates the user and group only when missing.
        let control = h.root + "/control"
        let extracted = try Pkg.runCommand(dpkgDeb, ["-e", deb, control])
        #expect(extracted.status == 0, "\(extracted.output)")
        #expect((try? String(contentsOfFile: control + "/conffiles", encoding: .utf8)) == "/etc/logd/logd.yaml\n")
        for script in ["postinst", "prerm", "postrm"] {
            let syntax = try Pkg.runCommand(sh, ["-n", control + "/" + script])
            #expect(syntax.status == 0, "\(script): \(syntax.output)")
        }
        let stubs = h.root + "/stubs"
        try FileManager.default.createDirectory(atPath: stubs, withIntermediateDirectories: true)
        let calls = h.root + "/calls.log"
        for tool in ["getent", "addgroup", "adduser", "deb-systemd-helper", "systemctl"] {
            let body =
                "#!/bin/sh\necho \"\(tool) $*\" >> \(calls)\n"
                + (tool == "getent" ? "exit ${GETENT_STATUS:-2}\n" : "exit 0\n")
            try body.write(toFile: stubs + "/" + tool, atomically: true, encoding: .utf8)
            chmod(stubs + "/" + tool, 0o755)
        }
        var env = ["PATH": stubs + ":/usr/bin:/bin", "GETENT_STATUS": "2"]
        let fresh = try Pkg.runCommand(sh, [control + "/postinst", "configure"], environment: env)
        #expect(fresh.status == 0, "\(fresh.output)")
        let freshCalls = (try? String(contentsOfFile: calls, encoding: .utf8)) ?? ""
        #expect(freshCalls.contains("addgroup --system --quiet logd"), "\(freshCalls)")
        #expect(freshCalls.contains("adduser --system") && freshCalls.contains("--ingroup logd"), "\(freshCalls)")
        #expect(freshCalls.contains("deb-systemd-helper") && freshCalls.contains("logd.socket"), "\(freshCalls)")
        try? FileManager.default.removeItem(atPath: calls)
        env["GETENT_STATUS"] = "0"
        let again = try Pkg.runCommand(sh, [control + "/postinst", "configure", "0.0.9"], environment: env)
        #expect(again.status == 0, "\(again.output)")
        let againCalls = (try? String(contentsOfFile: calls, encoding: .utf8)) ?? ""
        #expect(
            !againCalls.contains("addgroup") && !againCalls.contains("adduser"),
            "existing user and group are kept: \(againCalls)")
        for (script, arg) in [("prerm", "remove"), ("postrm", "remove"), ("postrm", "purge")] {
            let r = try Pkg.runCommand(sh, [control + "/" + script, arg], environment: env)
            #expect(r.status == 0, "\(script) \(arg): \(r.output)")
        }
        let postrm = (try? String(contentsOfFile: control + "/postrm", encoding: .utf8)) ?? ""
        #expect(
            !postrm.contains("rm -rf") && !postrm.contains("deluser"),
            "removing the package must keep the data and the user")
    }

    @Test(
        "systemd-analyze verify accepts the system and user units; the system service's exposure score is ≤ 2.0; man pages cover --help"
    )
    func systemdUnits() throws {
        guard let analyze = Pkg.requireTool("systemd-analyze", package: "systemd") else { return }
        let h = try DaemonHarness()
        defer { h.shutdown() }
        let source = Pkg.root + "/packaging/systemd"
        let runtime = h.root + "/runtime"
        try FileManager.default.createDirectory(
            atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var copies: [String: [String]] = [:]
        for instance in ["system", "user"] {
            let dir = h.root + "/" + instance
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for unit in ["logd.socket", "logd.service"] {
                let text = try String(contentsOfFile: "\(source)/\(instance)/\(unit)", encoding: .utf8)
                // verify wants ExecStart= to exist: point it at the binary built for the tests.
                try text.replacingOccurrences(of: "/usr/bin/logd", with: DaemonHarness.tool("logd"))
                    .write(toFile: dir + "/" + unit, atomically: true, encoding: .utf8)
                copies[instance, default: []].append(dir + "/" + unit)
            }
        }
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = runtime
        environment["SYSTEMD_LOG_COLOR"] = "0"
        let system = try Pkg.runCommand(
            analyze, ["verify", "--man=no"] + copies["system"]!, environment: environment, directory: h.root)
        #expect(
            system.status == 0 && system.output.isEmpty,
            "systemd-analyze verify (system): \(system.status)\n\(system.output)")
        let user = try Pkg.runCommand(
            analyze, ["verify", "--user", "--man=no"] + copies["user"]!, environment: environment, directory: h.root)
        #expect(
            user.status == 0 && user.output.isEmpty, "systemd-analyze verify --user: \(user.status)\n\(user.output)")

        let service = copies["system"]!.first { $0.hasSuffix(".service") }!
        let security = try Pkg.runCommand(
            analyze, ["security", "--offline=yes", "--threshold=20", "--no-pager", service],
            environment: environment, directory: h.root)
        let score = security.output.split(separator: "\n").first { $0.contains("Overall exposure level") }
            .flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        #expect(
            security.status == 0 && score != nil && score! <= 2.0,
            "exposure \(score.map { "\($0)" } ?? "?"):\n\(security.output)")

        // What the units promise (docs/OPERATIONS.md).
        let socketUnit = try String(contentsOfFile: source + "/system/logd.socket", encoding: .utf8)
        for line in ["ListenStream=/run/logd/logd.sock", "SocketGroup=logd", "SocketMode=0660"] {
            #expect(socketUnit.contains(line + "\n"), "system logd.socket lacks \(line)")
        }
        let serviceUnit = try String(contentsOfFile: source + "/system/logd.service", encoding: .utf8)
        for line in [
            "Type=notify", "User=logd", "StateDirectory=logd", "NoNewPrivileges=yes", "ProtectSystem=strict",
            "ProtectHome=yes", "PrivateTmp=yes", "MemoryDenyWriteExecute=yes", "RestrictAddressFamilies=AF_UNIX",
        ] {
            #expect(serviceUnit.contains(line + "\n"), "system logd.service lacks \(line)")
        }
        let userSocket = try String(contentsOfFile: source + "/user/logd.socket", encoding: .utf8)
        #expect(userSocket.contains("ListenStream=%t/logd/logd.sock\n"))
        let config = try String(contentsOfFile: Pkg.root + "/packaging/logd.yaml", encoding: .utf8)
        #expect(
            config.contains("socket: \"/run/logd/logd.sock\"") && config.contains("data_root: \"/var/lib/logd/runs\""),
            "packaging/logd.yaml is the system instance's config: its paths must match the units")

        try Pkg.checkManPages()
    }
}

extension Pkg {
    /// The committed man pages (packaging/man, `make man`): every logctl subcommand and every
    /// option of every --help; logd.8 lists no subcommand or `help` entry (logd has none); both
    /// have ENVIRONMENT (every variable --help names), FILES and EXIT STATUS (logctl's codes 0-4,
    /// docs/CONTROL_PROTOCOL.md).
    static func checkManPages() throws {
        let root = Pkg.root
        let logctlHelp = try Pkg.runCommand(DaemonHarness.tool("logctl"), ["--help"]).output
        let subcommands =
            logctlHelp.components(separatedBy: "SUBCOMMANDS:").dropFirst().first.map { section in
                section.split(separator: "\n").compactMap { line -> String? in
                    // "  name    abstract": two spaces, then the name; wrapped abstracts are indented further.
                    guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = line.split(separator: " ").first else { return nil }
                    return word.allSatisfy({ $0.isLowercase || $0 == "-" }) ? String(word) : nil
                }
            } ?? []
        #expect(Set(subcommands).isSuperset(of: ["status", "flush", "runs", "show", "compare", "tail"]), "\(subcommands)")
        let logctlPage = try String(contentsOfFile: root + "/packaging/man/logctl.1", encoding: .utf8)
        for sub in subcommands {
            #expect(logctlPage.contains(".It Em \(sub)\n"), "logctl.1 lacks the subcommand \(sub); run `make man`")
        }
        let logdPage = try String(contentsOfFile: root + "/packaging/man/logd.8", encoding: .utf8)
        #expect(!logdPage.contains(".It Em help") && !logdPage.contains(".Ar subcommand"), "logd has no subcommands")
        #expect(try Pkg.runCommand(DaemonHarness.tool("logd"), ["help"]).status != 0, "logd help exists: document it")
        for (name, page) in [("logd.8", logdPage), ("logctl.1", logctlPage)] {
            for section in [".Sh ENVIRONMENT\n", ".Sh FILES\n", ".Sh EXIT STATUS\n"] {
                #expect(page.contains(section), "\(name) lacks \(section)")
            }
            #expect(!page.contains(".Ex -std"), "\(name): EXIT STATUS comes from packaging/man/\(name).sections")
        }
        let logdHelp = try Pkg.runCommand(DaemonHarness.tool("logd"), ["--help"]).output
        for (name, page, help) in [("logd.8", logdPage, logdHelp), ("logctl.1", logctlPage, logctlHelp)] {
            let environment = page.components(separatedBy: ".Sh ENVIRONMENT").last?.components(separatedBy: ".Sh FILES").first ?? ""
            let variables = Set(
                help.split(whereSeparator: { !($0.isUppercase || $0 == "_" || $0 == "$") }).filter { $0.hasPrefix("$") && $0.count > 1 })
            #expect(!variables.isEmpty)
            for v in variables {
                #expect(environment.contains("Ev \(v.dropFirst())"), "\(name)'s ENVIRONMENT lacks \(v) (named in --help)")
            }
        }
        let exitSection = logctlPage.components(separatedBy: ".Sh EXIT STATUS").last ?? ""
        for code in ["0", "1", "2", "3", "4"] {
            #expect(exitSection.contains("\n.It \(code)\n"), "logctl.1's EXIT STATUS lacks \(code)")
        }

        // The docs' logctl command lines put the subcommand first (`logctl --socket S status` exits 2).
        for doc in ["README.md", "docs/OPERATIONS.md", "docs/LOGCTL.md", "docs/CONFIGURATION.md", "packaging/README.md"] {
            guard let text = try? String(contentsOfFile: root + "/" + doc, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                for piece in line.components(separatedBy: "logctl ").dropFirst() {
                    guard piece.hasPrefix("-") else { continue }
                    let word = String(piece.prefix { !$0.isWhitespace && $0 != "`" })
                    #expect(
                        ["--version", "--help", "-h", "--generate-completion-script"].contains(word),
                        "\(doc): `logctl \(word) …`: options follow the subcommand: \(line)")
                }
            }
        }

        for (page, command) in [("logd.8", ["logd"])] + subcommands.map { ("logctl.1", ["logctl", $0]) } {
            let man = try String(contentsOfFile: Pkg.root + "/packaging/man/" + page, encoding: .utf8)
            let help = try Pkg.runCommand(DaemonHarness.tool(command[0]), Array(command.dropFirst()) + ["--help"])
                .output
            let options = Set(
                help.split(whereSeparator: { " ,\n[]<>().:;'".contains($0) }).filter { $0.hasPrefix("--") && $0.count > 2 })
            #expect(!options.isEmpty)
            for option in options {
                // ".It Fl -name", or ".It Fl f , -name" where there is a short form too.
                #expect(
                    man.contains("Fl -" + option.dropFirst(2)) || man.contains(" , -" + option.dropFirst(2)),
                    "\(page) lacks \(option) (\(command.joined(separator: " ")) --help); run `make man`")
            }
        }
    }
}
