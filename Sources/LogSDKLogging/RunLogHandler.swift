import LogSDK
import Logging
import Wire

/// A swift-log `LogHandler` that sends every `Logger` call to a run's main.log:
/// `LoggingSystem.bootstrap { RunLogHandler(label: $0, run: run) }`.
public struct RunLogHandler: LogHandler {
    public let label: String
    public let run: Run
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String, run: Run, logLevel: Logger.Level = .info) {
        self.label = label
        self.run = run
        self.logLevel = logLevel
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var text = "\(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        if !merged.isEmpty {
            text += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        run.log(text, level: RunLogHandler.level(event.level), logger: label)
    }

    static func level(_ l: Logger.Level) -> LogLevel {
        switch l {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}
