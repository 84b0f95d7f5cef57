#if canImport(Glibc)
    import Glibc
#endif
import LogdSystem

/// Small file-system helpers for the reading side (logctl): plain paths, no Foundation.
public enum FS {
    /// The names in a directory (without `.` and `..`), unsorted; empty if it cannot be read.
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// lstat: symlinks are not followed.
    public static func lstatInfo(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    public static func statInfo(_ path: String) -> stat? {
        var st = stat()
        return stat(path, &st) == 0 ? st : nil
    }

    /// A real directory (not a symlink to one).
    public static func isDirectory(_ path: String) -> Bool {
        guard let st = lstatInfo(path) else { return false }
        return st.st_mode & S_IFMT == S_IFDIR
    }

    /// A regular file (not a symlink).
    public static func isFile(_ path: String) -> Bool {
        guard let st = lstatInfo(path) else { return false }
        return st.st_mode & S_IFMT == S_IFREG
    }

    /// The whole file, or nil if it cannot be opened (symlinks are not followed).
    public static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd)
    }

    /// Everything from the descriptor's position to its end.
    public static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    public static func readText(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A NUL-terminated C buffer as a String.
    static func cText(_ buf: [CChar]) -> String {
        String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The current directory, for resolving relative paths.
    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "." }
        return cText(buf)
    }

    /// `path` made absolute against the current directory, with `.`, `..` and repeated `/` removed
    /// (textually; symlinks are not resolved).
    public static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        var parts: [Substring] = []
        for p in full.split(separator: "/") {
            if p == "." { continue }
            if p == ".." {
                _ = parts.popLast()
                continue
            }
            parts.append(p)
        }
        return "/" + parts.joined(separator: "/")
    }
}
