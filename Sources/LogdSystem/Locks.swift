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
