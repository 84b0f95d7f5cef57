import Wire

/// Random records of every kind, for round-trip and split-feeding properties.
struct RandomRecords {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// Strings that trip up encoders: empty, YAML-ish words, control characters, multi-byte UTF-8.
    static let tricky = [
        "", "yes", "1.0", "null", "~", "0x10", "a.b:c", "-lead", "multi\nline", "tab\there", "ünïcødé",
        "日本語", "🙂 emoji", "quote\"back\\slash", "\u{0}nul",
    ]

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func i64() -> Int64 { Int64(bitPattern: rng.next()) }
    mutating func bool() -> Bool { rng.next() & 1 == 1 }

    mutating func string(max: Int = 24) -> String {
        if int(0...3) == 0 { return RandomRecords.tricky[int(0...(RandomRecords.tricky.count - 1))] }
        let scalars = (0..<int(0...max)).map { _ -> Character in
            switch int(0...9) {
            case 0: "é"
            case 1: "€"
            case 2: "𝄞"
            default: Character(Unicode.Scalar(UInt8(int(0x20...0x7E))))
            }
        }
        return String(scalars)
    }

    mutating func double() -> Double {
        switch int(0...7) {
        case 0: .nan
        case 1: .infinity
        case 2: -.infinity
        case 3: -0.0
        case 4: 1e-5
        default: Double(bitPattern: rng.next())
        }
    }

    mutating func value(depth: Int = 1) -> Value {
        let maxKind = depth >= 5 ? 4 : 6
        switch int(0...maxKind) {
        case 0: return .null
        case 1: return .bool(bool())
        case 2: return .int(i64())
        case 3: return .double(double())
        case 4: return .string(string())
        case 5: return .list((0..<int(0...4)).map { _ in value(depth: depth + 1) })
        default: return .map((0..<int(0...4)).map { _ in (key: string(max: 8), value: value(depth: depth + 1)) })
        }
    }

    mutating func metric() -> Metric {
        Metric(keyID: UInt32(truncatingIfNeeded: rng.next()), step: i64(), timestamp: i64(), value: double())
    }

    mutating func digest() -> Digest256 {
        bool() ? .zero : Digest256(words: (rng.next(), rng.next(), rng.next(), rng.next()))
    }

    mutating func record() -> Record {
        switch int(0...19) {
        case 0:
            return .hello(
                Hello(
                    role: bool() ? .producer : .control, pid: UInt32(truncatingIfNeeded: rng.next()),
                    session: SessionID(high: rng.next(), low: rng.next()), firstSeq: rng.next(),
                    clientName: string(), clientVersion: string(), minor: UInt8(int(0...255))))
        case 1:
            return .welcome(
                Welcome(
                    durableThrough: rng.next(), maxFrameBytes: UInt32(truncatingIfNeeded: rng.next()),
                    daemonVersion: string()))
        case 2: return .ack(durableThrough: rng.next())
        case 3: return .flush(token: rng.next())
        case 4:
            return .flushDone(
                FlushDone(token: rng.next(), status: bool() ? .ok : .timedOut, durableThrough: rng.next()))
        case 5: return .error(ErrorReport(code: .malformedFrame, message: string(max: 80)))
        case 6:
            return .metricKey(
                MetricKey(id: UInt32(int(0...1000)), key: string(), context: string(), source: string()))
        case 7:
            return .controlRequest(
                ControlRequest(requestID: UInt32(int(0...1000)), rawVerb: UInt8(int(0...255)), arguments: value()))
        case 8:
            return .controlReply(ControlReply(requestID: UInt32(int(0...1000)), status: .ok, body: value()))
        case 9:
            return .runStart(
                RunStart(
                    runID: string(), experiment: string(), name: string(), tags: (0..<int(0...3)).map { _ in string() },
                    rank: Int32(truncatingIfNeeded: i64()), localRank: Int32(int(0...7)), worldSize: Int32(int(1...64)),
                    host: string(), commandLine: (0..<int(0...5)).map { _ in string(max: 40) },
                    workingDirectory: string(), gitCommit: string(),
                    gitDirty: [GitDirty.clean, .dirty, .unknown][int(0...2)], seed: bool() ? i64() : nil,
                    startTime: i64()))
        case 10: return .params(value())
        case 11: return .metric(metric())
        case 12: return .metricBatch((0..<int(0...20)).map { _ in metric() })
        case 13:
            return .log(
                LogLine(
                    level: LogLevel.allCases[int(0...6)], timestamp: i64(), logger: string(), message: string(max: 200)))
        case 14:
            return .artifact(
                Artifact(
                    context: string(), step: i64(), role: bool() ? .input : .output, mode: bool() ? .copy : .reference,
                    fileName: string(), originalPath: string(max: 60), size: rng.next(), sha256: digest(),
                    timestamp: i64()))
        case 15:
            return .modelInfo(
                ModelInfo(name: string(), parameterCount: rng.next(), memoryBytes: rng.next(), layers: value()))
        case 16:
            return .modelVersion(
                ModelVersion(
                    modelName: string(), context: string(), step: i64(), mode: bool() ? .copy : .reference,
                    fileName: string(), originalPath: string(), size: rng.next(), sha256: digest(), timestamp: i64()))
        case 17:
            return .dataset(
                DatasetInfo(
                    label: string(), context: string(), samples: rng.next(), batchSize: UInt32(int(1...4096)),
                    workers: UInt32(int(0...64)), shuffle: bool(), batches: rng.next()))
        case 18: return .drops(total: rng.next())
        default:
            return .runEnd(RunEnd(status: [RunStatus.finished, .failed, .killed][int(0...2)], timestamp: i64()))
        }
    }
}
