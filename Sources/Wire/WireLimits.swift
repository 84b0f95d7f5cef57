/// Every limit a decoder (and the encoder, for what it writes) enforces, in one place.
///
/// Limits are checked before any slice or allocation, with overflow-safe arithmetic.
public struct WireLimits: Sendable, Equatable {
    /// Largest value of a frame's length prefix (kind byte + body). Default 1 MiB.
    public var maxFrameBytes: Int
    /// Longest identifier: run id, experiment, run name, metric key, context, source, logger,
    /// host, tag, client name, file name. Default 4096 bytes.
    public var maxNameBytes: Int
    /// Longest free text: a log message, a path, a command-line argument, a value-tree string.
    /// Bounded by the frame anyway. Default 256 KiB.
    public var maxTextBytes: Int
    /// Deepest nesting of a value tree (the top-level value is depth 1). Default 64.
    public var maxDepth: Int
    /// Most elements in one list, map, string list or metric batch. Default 65,536.
    public var maxCollectionCount: Int

    public init(
        maxFrameBytes: Int = 1 << 20,
        maxNameBytes: Int = 4096,
        maxTextBytes: Int = 256 << 10,
        maxDepth: Int = 64,
        maxCollectionCount: Int = 65_536
    ) {
        self.maxFrameBytes = maxFrameBytes
        self.maxNameBytes = maxNameBytes
        self.maxTextBytes = maxTextBytes
        self.maxDepth = maxDepth
        self.maxCollectionCount = maxCollectionCount
    }

    public static let `default` = WireLimits()
}
