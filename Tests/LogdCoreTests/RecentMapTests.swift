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
