#if canImport(Glibc)
    import Glibc
#endif

/// Detects fork(): a child process must never write on its parent's socket. A pthread_atfork
/// handler bumps `generation` in the child; a run compares it with its own on every call (one
/// load on the hot path) and, when it changed, starts a new producer session of its own.
/// The prepare/parent/child handlers hold every run's locks (its state lock, then its frame
/// store's) across fork(), so a child never inherits a lock that another thread held.
enum ForkTracker {
    nonisolated(unsafe) static var generation = 0
    nonisolated(unsafe) private static var runs: [Unmanaged<Run>] = []
    private static let lock = SDKLock()
    private static let installed: Bool = {
        pthread_atfork(
            { ForkTracker.prepare() },
            { ForkTracker.afterFork(child: false) },
            { ForkTracker.afterFork(child: true) })
        return true
    }()

    static func register(_ run: Run) {
        _ = installed
        lock.lock()
        runs.append(Unmanaged.passUnretained(run))
        lock.unlock()
    }

    static func unregister(_ run: Run) {
        lock.lock()
        runs.removeAll { $0.toOpaque() == Unmanaged.passUnretained(run).toOpaque() }
        lock.unlock()
    }

    private static func prepare() {
        lock.lock()
        for r in runs {
            let run = r.takeUnretainedValue()
            run.stateLock.lock()
            run.store.lock.lock()
        }
    }

    private static func afterFork(child: Bool) {
        for r in runs {
            let run = r.takeUnretainedValue()
            run.store.lock.unlock()
            run.stateLock.unlock()
        }
        if child { generation &+= 1 }
        lock.unlock()
    }
}
