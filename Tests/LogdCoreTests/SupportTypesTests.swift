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
