#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// Copies copy-mode artifacts and model versions into run directories on a thread of its own,
/// off the metric path: a 1 GiB checkpoint never stalls the writer. Owned by the writer, which
/// submits jobs and hears about each finished one through `finished` (any thread → writer).
///
/// A job reads the client's descriptor from offset 0 (pread: the client's file position is left
/// alone) up to the size it had when the copy started, hashing as it goes, into
/// `<dir>/.<name>.part`; then fsync, rename to `<name>`, fsync the directory. A crash leaves
/// no half-written file under the final name. The thread runs at a lower priority (nice 10), so
/// the loop and the writer win the CPU when both want it.
///
/// Threading: `submit` and `stop` are thread-safe; the rest runs on the copier thread.
final class ArtifactCopier: @unchecked Sendable {
    static let chunkBytes = 1 << 20

    private let jobs = JobQueue<CopyJob>()
    private let finished: @Sendable (CopyResult) -> Void
    private var thread: NativeThread?

    init(finished: @escaping @Sendable (CopyResult) -> Void) { self.finished = finished }

    func start() {
        thread = NativeThread(name: "logd-copier") { [self] in run() }
    }

    func submit(_ job: CopyJob) { jobs.submit(job) }

    /// Abandons the running copy and the queued ones (their descriptors are closed; a restart
    /// takes the frames again when producers resend them) and joins the thread.
    func stop() {
        jobs.stop()
        thread?.join()
        thread = nil
        for job in jobs.takeAll() {
            close(job.fd)
            close(job.dirfd)
        }
    }

    private func run() {
        // Linux: PRIO_PROCESS with id 0 sets the calling thread's nice value, not the process's.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ArtifactCopier.chunkBytes, alignment: 64)
        defer { buffer.deallocate() }
        while let job = jobs.next(drain: false) {
            let result = copy(job, buffer: buffer)
            if result.error == "cancelled" { return }
            finished(result)
        }
    }

    private func copy(_ job: CopyJob, buffer: UnsafeMutableRawPointer) -> CopyResult {
        defer {
            close(job.fd)
            close(job.dirfd)
        }
        func failure(_ message: String) -> CopyResult {
            CopyResult(id: job.id, run: job.run, size: 0, sha256: .zero, error: message)
        }
        guard job.dirfd >= 0 else { return failure("cannot open the run directory") }
        var st = stat()
        guard fstat(job.fd, &st) == 0 else { return failure("\(SystemError("fstat"))") }
        // Only regular files: a pipe or socket could block the copier forever.
        guard st.st_mode & S_IFMT == S_IFREG else { return failure("the descriptor is not a regular file") }
        let total = Int64(st.st_size)

        // The target directory (names are single safe components; symlinks are not followed).
        var dirs: [Int32] = []
        defer { for fd in dirs { close(fd) } }
        var dir = job.dirfd
        for name in job.directories {
            do {
                dir = try Posix.makeDirectory(dir, name)
            } catch {
                return failure(error.description)
            }
            dirs.append(dir)
        }
        let temp = ".\(job.name).part"
        let out = openat(dir, temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o666)
        guard out >= 0 else { return failure("\(SystemError("open", path: temp))") }
        var sha = SHA256()
        var offset: Int64 = 0
        var failed: String?
        while offset < total {
            if jobs.isStopping {
                failed = "cancelled"
                break
            }
            let want = Int(min(Int64(ArtifactCopier.chunkBytes), total - offset))
            let n = pread(job.fd, buffer, want, off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                failed = "\(SystemError("read"))"
                break
            }
            if n == 0 { break }  // the file shrank: copy what there is
            sha.update(UnsafeRawBufferPointer(start: buffer, count: n))
            do {
                try Posix.writeAll(out, UnsafeRawBufferPointer(start: buffer, count: n))
            } catch {
                failed = error.description
                break
            }
            offset += Int64(n)
        }
        if failed == nil, fsync(out) != 0 { failed = "\(SystemError("fsync"))" }
        close(out)
        if let failed {
            unlinkat(dir, temp, 0)
            return failure(failed)
        }
        if renameat(dir, temp, dir, job.name) != 0 {
            let e = SystemError("rename", path: job.name)
            unlinkat(dir, temp, 0)
            return failure(e.description)
        }
        // The new name, and any directory made for it, must survive a crash.
        fsync(dir)
        for fd in dirs.dropLast().reversed() { fsync(fd) }
        fsync(job.dirfd)
        return CopyResult(id: job.id, run: job.run, size: UInt64(offset), sha256: sha.finalize(), error: nil)
    }
}
