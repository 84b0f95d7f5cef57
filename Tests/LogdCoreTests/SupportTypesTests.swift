import LogdRead
import LogdSystem
import Testing

@Suite("RecentMap")
struct RecentMapTests {
    @Test("keeps at most its capacity, forgetting the oldest key first; updating a key keeps its place")
    func boundedOldestFirst() {
        var m = RecentMap<Int, String>(capacity: 3)
        for i in 0..<3 { m.set("v\(i)", for: i) }
        m.set("again", for: 0)  // an update: still the oldest
        #expect(m.count == 3 && m[0] == "again")
        m.set("v3", for: 3)
        #expect(m.count == 3 && m[0] == nil && m[1] == "v1" && m[3] == "v3")
        for i in 4..<1000 { m.set("v\(i)", for: i) }
        #expect(m.count == 3 && m[997] == "v997" && m[999] == "v999" && m[996] == nil)
    }
}

@Suite("text tables")
struct TextTableTests {
    @Test("a multi-line or tabbed cell stays in its row: one line per row in table output, escaped as \\n and \\t")
    func multiLineCellsStayInTheirRow() {
        let out = TextFormat.table(["RUN", "note"], [["a", "line one\nline two\tend"], ["b", "x"]])
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        #expect(lines.count == 3, "\(out)")
        #expect(lines[1].hasPrefix("a") && lines[1].contains("line one\\nline two\\tend"))
        #expect(lines[2].hasPrefix("b"))
    }
}

@Suite("WorkerPool")
struct WorkerPoolTests {
    /// Counts under a lock (the pool's items run on several threads).
    final class Tally: @unchecked Sendable {
        let lock = ConditionLock()
        var counts: [Int]
        var started = 0
        init(_ n: Int) { counts = Array(repeating: 0, count: n) }
    }

    @Test("forEach calls every index exactly once and returns after the last call, job after job (2,000 jobs of 0-9 items)")
    func everyIndexOnce() {
        let pool = WorkerPool(threads: 3)
        defer { pool.stop() }
        for job in 0..<2000 {
            let n = job % 10
            let tally = Tally(n)
            pool.forEach(n) { i in tally.lock.withLock { tally.counts[i] += 1 } }
            #expect(tally.lock.withLock { tally.counts } == Array(repeating: 1, count: n), "job \(job)")
        }
    }

    @Test("the items of one job run at once: four items that each wait for all four to start all complete (3 threads and the caller)")
    func itemsOverlap() {
        let pool = WorkerPool(threads: 3)
        defer { pool.stop() }
        let tally = Tally(4)
        pool.forEach(4) { i in
            tally.lock.withLock {
                tally.started += 1
                tally.lock.broadcast()
                let deadline = Posix.monotonicNanos() + 10_000_000_000
                while tally.started < 4 && Posix.monotonicNanos() < deadline { tally.lock.wait(untilMonotonic: deadline) }
                tally.counts[i] = tally.started
            }
        }
        #expect(tally.counts == [4, 4, 4, 4], "every item saw all four started: \(tally.counts)")
    }
}
