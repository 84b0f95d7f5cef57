#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import LogdSystem
import Testing
import Wire

@testable import LogdCore

/// The writer takes its queue in slices (issue 18, item 5): a FLUSH's barrier completes once the
/// items queued before it are durable, without waiting for everything queued behind it.
@Suite struct WriterQueueTests {
    /// What the writer posts to the loop, call by call (the writer thread posts, the test reads).
    final class Posts: @unchecked Sendable {
        private let lock = ConditionLock()
        private var calls: [[LoopEvent]] = []

        func add(_ events: [LoopEvent]) {
            lock.withLock {
                calls.append(events)
                lock.broadcast()
            }
        }

        /// The index of the post that completed each barrier, once all of them completed (nil
        /// if they did not within a minute: a hang, not a timing assertion).
        func callIndices(ofBarriers ids: [UInt64]) -> [UInt64: Int]? {
            let deadline = Posix.monotonicNanos() + 60_000_000_000
            return lock.withLock {
                while true {
                    var found: [UInt64: Int] = [:]
                    for (i, events) in calls.enumerated() {
                        for case .barrierDone(let id, _) in events where ids.contains(id) { found[id] = i }
                    }
                    if found.count == ids.count { return found }
                    if Posix.monotonicNanos() >= deadline { return nil }
                    lock.wait(untilMonotonic: min(deadline, Posix.monotonicNanos() + 100_000_000))
                }
            }
        }
    }

    func makeWriter(_ posts: Posts) throws -> (Writer, String) {
        var template = Array("/tmp/logd-writerqueue-XXXXXX".utf8CString)
        _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let dir = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        var config = LogdConfig(environment: [:])
        config.dataRoot = dir + "/data"
        config.socket = dir + "/logd.sock"
        // Writer.init sets the process umask for run directories: this test process keeps its own.
        let umaskBefore = umask(0o022)
        defer { umask(umaskBefore) }
        let writer = try Writer(config: config, log: DaemonLog(level: "error"), post: { posts.add($0) })
        return (writer, dir)
    }

    @Test("a barrier completes before the writer takes the batches queued behind it (slices, not the whole queue)")
    func barrierDoesNotWaitForLaterBatches() throws {
        let posts = Posts()
        let (writer, dir) = try makeWriter(posts)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Everything is queued before the thread starts, so what it takes first is fixed: each
        // batch weighs a whole slice, so each is a slice of its own. Taking the whole queue at
        // once (as before) answers all three barriers in one durability point, in one post.
        let slice = max(64 << 10, writer.config.writerQueueBytes / 8)
        writer.enqueue([.barrier(1)], bytes: slice)
        writer.enqueue([.barrier(2)], bytes: slice)
        writer.enqueue([.barrier(3)], bytes: slice)
        #expect(writer.queuedBytes == 3 * slice)
        writer.start()
        let indices = posts.callIndices(ofBarriers: [1, 2, 3])
        writer.enqueue([.shutdown], bytes: 0)
        writer.join()
        let found = try #require(indices, "the barriers never completed")
        #expect(found[1]! < found[2]!, "barrier 1 waited for the batch queued behind it")
        #expect(found[2]! < found[3]!, "barrier 2 waited for the batch queued behind it")
        // Every slice's weight is given back once it is written.
        #expect(writer.queuedBytes == 0)
    }

    @Test("small batches share a slice up to its weight; the queue's weight is given back as slices are written")
    func smallBatchesShareASlice() throws {
        let posts = Posts()
        let (writer, dir) = try makeWriter(posts)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let slice = max(64 << 10, writer.config.writerQueueBytes / 8)
        // Two batches of half a slice are one slice; the third starts the next one.
        writer.enqueue([.barrier(1)], bytes: slice / 2)
        writer.enqueue([.barrier(2)], bytes: slice / 2)
        writer.enqueue([.barrier(3)], bytes: slice / 2)
        writer.start()
        let indices = posts.callIndices(ofBarriers: [1, 2, 3])
        writer.enqueue([.shutdown], bytes: 0)
        writer.join()
        let found = try #require(indices, "the barriers never completed")
        #expect(found[1]! == found[2]!)
        #expect(found[2]! < found[3]!)
        #expect(writer.queuedBytes == 0)
    }
}

extension WriterQueueTests {
    @Test("writer_queue_bytes: 2 MiB by default, two frames' worth when max_frame_bytes is raised without it; an explicit value is checked")
    func queueBoundDefault() throws {
        var config = LogdConfig(environment: [:])
        #expect(config.writerQueueBytes == 2 << 20)
        try config.apply(yaml: "max_frame_bytes: 4194304\n", fileName: "a.yaml")
        #expect(config.writerQueueBytes == 8 << 20)
        var small = LogdConfig(environment: [:])
        try small.apply(yaml: "max_frame_bytes: 65536\n", fileName: "b.yaml")
        #expect(small.writerQueueBytes == 2 << 20, "a smaller frame limit keeps the default")
        var explicit = LogdConfig(environment: [:])
        #expect(throws: ConfigError.self) {
            try explicit.apply(yaml: "max_frame_bytes: 4194304\nwriter_queue_bytes: 4194304\n", fileName: "c.yaml")
        }
    }
}

extension DaemonTests {
    @Test("a run started on a full disk: the items put back at the queue's front stay counted once, and the count is 0 when all is written")
    func requeuedItemsCountedOnce() throws {
        let h = try DaemonHarness()
        defer { h.shutdown() }
        try h.startWithDiskFault()
        try h.diskFull(true)
        let p = try RawProducer(h, runID: "requeue", experiment: "disk", name: "requeue")
        for step in 0..<2000 { try p.metric("loss", Double(step), step: Int64(step)) }
        #expect(try p.flush(timeoutMs: 30_000).status == .failed, "no run directory yet: the flush fails")
        guard case .int(let held)? = try h.status()["writer"]?["queue_bytes"] else {
            Issue.record("no writer.queue_bytes in status")
            return
        }
        #expect(held > 0, "the run's records wait in the queue")
        try h.diskFull(false)
        #expect(DaemonTests.flushSucceeds(p))
        // The flush's answer comes after the slice that held it was written and counted off; the
        // producer sent nothing after it, so nothing is queued.
        #expect(try h.status()["writer"]?["queue_bytes"] == .int(0))
        try p.end()
        #expect(metricRows(h.read((h.runDirectories().first ?? "") + "/metrics.csv")).map(\.step) == Array(0..<2000))
        #expect(h.stop() == 0)
    }
}
