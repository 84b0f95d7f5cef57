#if canImport(Glibc)
    import Glibc
#endif

/// Unbuffered writes to the standard streams (safe from any thread).
public enum FileOutput {
    public static func stderr(_ text: String) { write(2, text) }
    public static func stdout(_ text: String) { write(1, text) }

    package static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { try? Posix.writeAll(fd, UnsafeRawBufferPointer($0)) }
    }
}
