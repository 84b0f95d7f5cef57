#if canImport(Glibc)
    import Glibc
#endif
import Wire

/// What the SDK captures about the process at start: host, pid, command line, working
/// directory, git commit and dirty flag, ranks from the launcher's environment.
/// Called once per run start (never on the hot path).
enum ProcessCapture {
    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    static func firstInt(_ names: [String]) -> Int32? {
        for n in names { if let v = environment(n), let i = Int32(v) { return i } }
        return nil
    }

    /// Rank, local rank and world size from torchrun (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`),
    /// SLURM (`SLURM_PROCID`, `SLURM_LOCALID`, `SLURM_NTASKS`) or Open MPI.
    static func ranks() -> (rank: Int32, local: Int32, world: Int32) {
        let rank = firstInt(["RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"]) ?? 0
        let local = firstInt(["LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"]) ?? 0
        let world = firstInt(["WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]) ?? 1
        return (rank, local, max(1, world))
    }

    /// The run id ranks share: `LOGD_RUN_ID`, else torchrun's `TORCHELASTIC_RUN_ID`, else a
    /// SLURM job/step id, else a fresh random id.
    static func runID() -> String {
        if let id = environment("LOGD_RUN_ID") { return id }
        if let id = environment("TORCHELASTIC_RUN_ID"), id != "none" { return "torchrun-" + id }
        if let job = environment("SLURM_JOB_ID") { return "slurm-\(job)-\(environment("SLURM_STEP_ID") ?? "0")" }
        return randomHex(16)
    }

    static func randomHex(_ bytes: Int) -> String {
        var out = ""
        for _ in 0..<bytes { out += String(format2(UInt8.random(in: 0...255))) }
        return out
    }

    static func format2(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    static func hostName() -> String {
        var buf = [UInt8](repeating: 0, count: 256)
        _ = buf.withUnsafeMutableBytes { gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }
        return String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func workingDirectory() -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let ok = buf.withUnsafeMutableBytes { getcwd($0.baseAddress!.assumingMemoryBound(to: CChar.self), 4095) != nil }
        return ok ? String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self) : ""
    }

    /// Runs `git` with `args` in the working directory; nil if git is missing or fails.
    static func git(_ args: [String]) -> String? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        let argv = (["git"] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        let rc = posix_spawnp(&pid, "git", &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            return nil
        }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &chunk, chunk.count)
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0 else { return nil }
        var s = String(decoding: out, as: UTF8.self)
        while s.last == "\n" { s.removeLast() }
        return s
    }

    static func gitState() -> (commit: String, dirty: GitDirty) {
        guard let commit = git(["rev-parse", "HEAD"]) else { return ("", .unknown) }
        guard let status = git(["status", "--porcelain", "--untracked-files=no"]) else { return (commit, .unknown) }
        return (commit, status.isEmpty ? .clean : .dirty)
    }
}
