#if canImport(Glibc)
    import Glibc
#endif

/// A pthread mutex with a condition variable. Thread-safe by construction; the pointers are
/// allocated once and never move (no Swift exclusivity checks on C state).
package final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    @inline(__always) package func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) package func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always) package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    package func signal() { pthread_cond_signal(cond) }
    package func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits (lock held) until signalled or until the monotonic clock reaches `deadlineNanos`.
    package func wait(untilMonotonic deadlineNanos: Int64) {
        var ts = timespec(tv_sec: Int(deadlineNanos / 1_000_000_000), tv_nsec: Int(deadlineNanos % 1_000_000_000))
        pthread_cond_timedwait(cond, mutex, &ts)
    }
}

/// Starts a detached-by-join thread running `body`.
package final class NativeThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    package init(name: String, _ body: @escaping () -> Void) {
        self.body = body
        let unmanaged = Unmanaged.passRetained(self)
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let me = Unmanaged<NativeThread>.fromOpaque(arg!).takeRetainedValue()
                me.body()
                return nil
            }, unmanaged.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        _ = name  // thread names need pthread_setname_np, which Glibc's module map does not export
    }

    package func join() { pthread_join(thread, nil) }
}

/// A few threads that run the items of one job at once, with the caller taking items too.
/// For waits that overlap rather than add up: the fsyncs of many runs at one durability point
/// are covered by one journal commit when they wait together, and on a busy machine each fsync
/// done alone costs a sleep and a late wake-up.
///
/// Threading: `forEach` is for one thread at a time (the writer); `stop` joins the threads.
package final class WorkerPool: @unchecked Sendable {
    private let lock = ConditionLock()
    private var job: ((Int) -> Void)?
    private var next = 0
    private var count = 0
    private var finished = 0
    private var stopping = false
    private var threads: [NativeThread] = []

    package init(threads n: Int) {
        for _ in 0..<n { threads.append(NativeThread(name: "logd-worker") { [unowned self] in work() }) }
    }

    /// Calls `body(i)` for every `i` in `0..<count`, on the pool's threads and this one, and
    /// returns when every call has returned.
    package func forEach(_ count: Int, _ body: @escaping (Int) -> Void) {
        guard count > 1, !threads.isEmpty else {
            for i in 0..<count { body(i) }
            return
        }
        lock.withLock {
            job = body
            next = 0
            self.count = count
            finished = 0
            lock.broadcast()
        }
        while let i = take() {
            body(i)
            done()
        }
        lock.withLock {
            while finished < self.count { lock.wait(untilMonotonic: Posix.monotonicNanos() + 1_000_000_000) }
            job = nil
        }
    }

    package func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
        for t in threads { t.join() }
        threads.removeAll()
    }

    private func take() -> Int? {
        lock.withLock {
            guard job != nil, next < count else { return nil }
            next += 1
            return next - 1
        }
    }

    private func done() {
        lock.withLock {
            finished += 1
            if finished == count { lock.broadcast() }
        }
    }

    private func work() {
        while true {
            var item: (index: Int, body: (Int) -> Void)?
            lock.withLock {
                while !stopping && (job == nil || next >= count) { lock.wait(untilMonotonic: Posix.monotonicNanos() + 1_000_000_000) }
                if !stopping, let job {
                    item = (next, job)
                    next += 1
                }
            }
            guard let (index, body) = item else { return }
            body(index)
            done()
        }
    }
}

/// The jobs of one helper thread (the writer's copier and finisher): submitted from any thread,
/// taken in order by the helper.
package final class JobQueue<Job>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var jobs: [Job] = []
    private var stopping = false

    package init() {}

    package func submit(_ job: Job) {
        lock.withLock {
            jobs.append(job)
            lock.signal()
        }
    }

    /// Waits for the next job. After `stop`: nil at once, or (`drain`) once the queue is empty.
    package func next(drain: Bool) -> Job? {
        lock.withLock {
            while jobs.isEmpty && !stopping { lock.wait(untilMonotonic: Posix.monotonicNanos() + 1_000_000_000) }
            if stopping && (!drain || jobs.isEmpty) { return nil }
            return jobs.removeFirst()
        }
    }

    /// Asks the helper to stop (`next` answers nil).
    package func stop() {
        lock.withLock {
            stopping = true
            lock.signal()
        }
    }

    package var isStopping: Bool { lock.withLock { stopping } }

    /// The jobs never taken (after the helper stopped).
    package func takeAll() -> [Job] {
        lock.withLock {
            defer { jobs.removeAll() }
            return jobs
        }
    }
}
