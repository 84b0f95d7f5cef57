import Wire

/// The golden vectors in vectors/wire-v1/: each case is a `.bin` file of frames and a `.json`
/// file beside it that says what it holds. Other languages' clients test against that folder.
///
/// To rewrite the files after a deliberate protocol change:
/// `LOGD_WRITE_VECTORS=1 swift test --filter GoldenVector` (then review the diff).
struct GoldenVector {
    enum Expect {
        /// The bytes decode to these records, and these records encode to exactly these bytes.
        case records([Record])
        /// The bytes (written as given) fail with this error code after `recordsBefore` records.
        case error(code: String, bytes: [UInt8], recordsBefore: Int)
    }

    let name: String
    let description: String
    let expect: Expect
}

let t0: Int64 = 1_700_000_000_000_000_000  // 2023-11-14T22:13:20Z in ns
let demoSession = SessionID(high: 0x0011_2233_4455_6677, low: 0x8899_AABB_CCDD_EEFF)
let nestedConfig: Value = [
    "optimizer": ["type": "AdamW", "lr": 1e-3, "betas": [0.9, 0.999]],
    "layers": [["type": "Conv2d", "kernel_size": 3], ["type": "Linear", "bias": true]],
    "epochs": 10,
    "tricky": ["yes": "yes", "one": "1.0", "null_string": "null", "nothing": nil],
]

func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
func frame(kind: UInt8, body: [UInt8]) -> [UInt8] { le32(UInt32(body.count + 1)) + [kind] + body }
func wireString(_ bytes: [UInt8]) -> [UInt8] { le32(UInt32(bytes.count)) + bytes }

let producerHello = Hello(
    role: .producer, pid: 4242, session: demoSession, firstSeq: 1, clientName: "logsdk-swift", clientVersion: "0.1.0")

let goldenVectors: [GoldenVector] = [
    GoldenVector(
        name: "hello_producer", description: "Handshake of a producer opening session 00112233445566778899aabbccddeeff, first frame numbered 1.",
        expect: .records([.hello(producerHello)])),
    GoldenVector(
        name: "hello_control", description: "Handshake of a control client (logctl): zero session.",
        expect: .records([
            .hello(Hello(role: .control, pid: 77, session: .zero, firstSeq: 0, clientName: "logctl", clientVersion: "0.1.0"))
        ])),
    GoldenVector(
        name: "welcome", description: "The daemon's answer: nothing durable yet, 1 MiB frame limit.",
        expect: .records([.welcome(Welcome(durableThrough: 0, maxFrameBytes: 1 << 20, daemonVersion: "logd 0.1.0"))])),
    GoldenVector(
        name: "ack", description: "Every frame of the session through number 1000 is on disk.",
        expect: .records([.ack(durableThrough: 1000)])),
    GoldenVector(name: "flush", description: "A producer's barrier with token 7.", expect: .records([.flush(token: 7)])),
    GoldenVector(
        name: "flush_done", description: "Barrier 7 completed; the session is durable through frame 1000.",
        expect: .records([.flushDone(FlushDone(token: 7, status: .ok, durableThrough: 1000))])),
    GoldenVector(
        name: "error", description: "The daemon's last word before closing a connection that sent a bad frame.",
        expect: .records([.error(ErrorReport(code: .malformedFrame, message: "unknown frame kind 0x7e"))])),
    GoldenVector(
        name: "metric_key", description: "Interns (loss, training, no source) as key id 1 on this connection.",
        expect: .records([.metricKey(MetricKey(id: 1, key: "loss", context: "training"))])),
    GoldenVector(
        name: "control_request_status", description: "logctl asks for status (request id 1, no arguments).",
        expect: .records([.controlRequest(ControlRequest(requestID: 1, verb: .status))])),
    GoldenVector(
        name: "control_request_flush", description: "logctl asks for a flush of one run with a 5 s timeout.",
        expect: .records([
            .controlRequest(ControlRequest(requestID: 2, verb: .flush, arguments: ["run_id": "run-1", "timeout_ms": 5000]))
        ])),
    GoldenVector(
        name: "control_reply", description: "A successful reply carrying a small value tree.",
        expect: .records([
            .controlReply(ControlReply(requestID: 1, status: .ok, body: ["version": "logd 0.1.0", "connections": 3]))
        ])),
    GoldenVector(
        name: "run_start", description: "Rank 0 of 2 starting run 'run-1' of experiment 'mnist' with seed 42.",
        expect: .records([
            .runStart(
                RunStart(
                    runID: "run-1", experiment: "mnist", name: "baseline", tags: ["cnn", "lr-sweep"], rank: 0,
                    localRank: 0, worldSize: 2, host: "gpu-node-1", commandLine: ["python", "train.py", "--lr", "1e-3"],
                    workingDirectory: "/home/ada/mnist", gitCommit: "3f2c1e9", gitDirty: .dirty, seed: 42, startTime: t0))
        ])),
    GoldenVector(
        name: "run_start_no_seed", description: "A run start with no seed and unknown git state.",
        expect: .records([.runStart(RunStart(runID: "r", experiment: "e", name: "n", startTime: t0))])),
    GoldenVector(
        name: "params", description: "A nested config: maps, lists, strings, ints, doubles, bools and null.",
        expect: .records([.params(nestedConfig)])),
    GoldenVector(
        name: "metric", description: "Key 1 at step 100, time 2023-11-14T22:13:20Z, value 0.5 (the example in docs/WIRE_PROTOCOL.md).",
        expect: .records([.metric(Metric(keyID: 1, step: 100, timestamp: t0, value: 0.5))])),
    GoldenVector(
        name: "metric_no_step", description: "A metric without a step (step = INT64_MIN).",
        expect: .records([.metric(Metric(keyID: 2, step: WireProtocol.noStep, timestamp: t0, value: -1.25))])),
    GoldenVector(
        name: "metric_batch", description: "Three metrics in one frame, including NaN and infinity.",
        expect: .records([
            .metricBatch([
                Metric(keyID: 1, step: 1, timestamp: t0, value: 2.5),
                Metric(keyID: 1, step: 2, timestamp: t0 + 1_000_000, value: .nan),
                Metric(keyID: 2, step: 2, timestamp: t0 + 2_000_000, value: .infinity),
            ])
        ])),
    GoldenVector(
        name: "log", description: "An INFO line from logger 'train'.",
        expect: .records([.log(LogLine(level: .info, timestamp: t0, logger: "train", message: "epoch 1: loss=0.25 ✓"))])),
    GoldenVector(
        name: "artifact_copy", description: "An output file copied by descriptor (the fd travels with SCM_RIGHTS, not in the bytes).",
        expect: .records([
            .artifact(
                Artifact(
                    context: "training", step: 100, role: .output, mode: .copy, fileName: "confusion.png",
                    originalPath: "/home/ada/mnist/out/confusion.png", timestamp: t0))
        ])),
    GoldenVector(
        name: "artifact_reference", description: "An input data file recorded by path, size and client-computed sha256.",
        expect: .records([
            .artifact(
                Artifact(
                    context: "training", step: WireProtocol.noStep, role: .input, mode: .reference,
                    fileName: "train.csv", originalPath: "/data/train.csv", size: 3,
                    sha256: Digest256(words: (0xba78_16bf_8f01_cfea, 0x4141_40de_5dae_2223, 0xb003_61a3_9617_7a9c, 0xb410_ff61_f200_15ad)),
                    timestamp: t0))
        ])),
    GoldenVector(
        name: "model_info", description: "A model with 2 layers described as a value tree.",
        expect: .records([
            .modelInfo(
                ModelInfo(
                    name: "resnet", parameterCount: 11_689_512, memoryBytes: 46_758_048,
                    layers: [["name": "conv1", "type": "Conv2d", "parameters": 9408], ["name": "fc", "type": "Linear", "parameters": 513_000]]))
        ])),
    GoldenVector(
        name: "model_version", description: "A checkpoint of model 'resnet' at step 500, copied by descriptor.",
        expect: .records([
            .modelVersion(
                ModelVersion(
                    modelName: "resnet", context: "training", step: 500, mode: .copy, fileName: "resnet.pt",
                    originalPath: "/home/ada/mnist/ckpt/resnet.pt", timestamp: t0))
        ])),
    GoldenVector(
        name: "dataset", description: "The training loader: 60000 samples, batches of 64, 4 workers, shuffled.",
        expect: .records([
            .dataset(
                DatasetInfo(label: "mnist-train", context: "training", samples: 60_000, batchSize: 64, workers: 4, shuffle: true, batches: 938))
        ])),
    GoldenVector(
        name: "run_end", description: "The producer finished its run.",
        expect: .records([.runEnd(RunEnd(status: .finished, timestamp: t0 + 60_000_000_000))])),
    GoldenVector(
        name: "drops", description: "The producer has dropped 12 records so far (overflow policy).",
        expect: .records([.drops(total: 12)])),
    GoldenVector(
        name: "session_stream",
        description: "A whole short producer session: hello, run start, params, a key, two metrics, a log line, flush, run end.",
        expect: .records([
            .hello(producerHello),
            .runStart(RunStart(runID: "run-1", experiment: "mnist", name: "baseline", startTime: t0)),
            .params(["lr": 0.001, "batch_size": 64]),
            .metricKey(MetricKey(id: 1, key: "loss", context: "training")),
            .metric(Metric(keyID: 1, step: 1, timestamp: t0, value: 2.0)),
            .metric(Metric(keyID: 1, step: 2, timestamp: t0 + 1_000_000, value: 1.5)),
            .log(LogLine(level: .warning, timestamp: t0, logger: "train", message: "lr is high")),
            .flush(token: 1),
            .runEnd(RunEnd(status: .finished, timestamp: t0 + 2_000_000)),
        ])),

    // Error cases: bytes that must be refused with exactly this error.
    GoldenVector(
        name: "err_empty_frame", description: "A length prefix of 0: a frame holds at least its kind byte.",
        expect: .error(code: "empty_frame", bytes: [0, 0, 0, 0], recordsBefore: 0)),
    GoldenVector(
        name: "err_length_4gib", description: "A length prefix of 0xFFFFFFFF (4 GiB): refused after 4 bytes, nothing allocated.",
        expect: .error(code: "frame_too_large", bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x22], recordsBefore: 0)),
    GoldenVector(
        name: "err_length_over_limit", description: "A length prefix of 1 MiB + 1, one over the default limit.",
        expect: .error(code: "frame_too_large", bytes: le32((1 << 20) + 1) + [0x24], recordsBefore: 0)),
    GoldenVector(
        name: "err_http_garbage", description: "Random text (an HTTP request) sent to the socket: its first 4 bytes read as a huge length.",
        expect: .error(code: "frame_too_large", bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), recordsBefore: 0)),
    GoldenVector(
        name: "err_truncated_body", description: "A METRIC whose length prefix (21) is too small for its 28-byte body.",
        expect: .error(code: "truncated_body", bytes: frame(kind: 0x22, body: Array(repeating: 1, count: 20)), recordsBefore: 0)),
    GoldenVector(
        name: "err_truncated_stream", description: "A valid METRIC frame cut off after 20 of its 33 bytes, then end of stream.",
        expect: .error(
            code: "truncated_stream",
            bytes: Array(try! FrameEncoder().frame(.metric(Metric(keyID: 1, step: 100, timestamp: t0, value: 0.5))).prefix(20)),
            recordsBefore: 0)),
    GoldenVector(
        name: "err_trailing_bytes", description: "An ACK with one byte more than its u64.",
        expect: .error(code: "trailing_bytes", bytes: frame(kind: 0x03, body: le64(5) + [0]), recordsBefore: 0)),
    GoldenVector(
        name: "err_unknown_kind", description: "Kind 0x7E, unknown to version 1.0, from a peer that announced no newer minor version.",
        expect: .error(code: "unknown_kind", bytes: frame(kind: 0x7E, body: [1, 2, 3]), recordsBefore: 0)),
    GoldenVector(
        name: "err_bad_magic", description: "A HELLO that starts with LOGX instead of LOGD.",
        expect: .error(
            code: "bad_magic",
            bytes: {
                var b = try! FrameEncoder().frame(.hello(producerHello))
                b[8] = 0x58
                return b
            }(), recordsBefore: 0)),
    GoldenVector(
        name: "err_wrong_version", description: "A HELLO of protocol version 2.0.",
        expect: .error(
            code: "unsupported_version",
            bytes: try! FrameEncoder().frame(
                .hello(Hello(role: .producer, pid: 1, session: demoSession, firstSeq: 1, clientName: "x", clientVersion: "9", major: 2, minor: 0))),
            recordsBefore: 0)),
    GoldenVector(
        name: "err_invalid_utf8", description: "A LOG whose message holds the bytes C3 28 (not UTF-8).",
        expect: .error(
            code: "invalid_utf8",
            bytes: frame(kind: 0x24, body: [2] + le64(UInt64(t0)) + wireString(Array("train".utf8)) + wireString([0xC3, 0x28])),
            recordsBefore: 0)),
    GoldenVector(
        name: "err_nesting_bomb", description: "PARAMS holding 100 lists nested in each other (limit 64).",
        expect: .error(
            code: "nesting_too_deep",
            bytes: frame(kind: 0x21, body: Array((0..<100).map { _ in [UInt8(0x06)] + le32(1) }.joined()) + [0x00]),
            recordsBefore: 0)),
    GoldenVector(
        name: "err_collection_count", description: "PARAMS holding a list that claims 4294967295 elements in a 6-byte body.",
        expect: .error(code: "collection_too_large", bytes: frame(kind: 0x21, body: [0x06] + le32(.max)), recordsBefore: 0)),
    GoldenVector(
        name: "err_string_length", description: "A METRIC_KEY whose key claims 4294967280 bytes.",
        expect: .error(code: "string_too_long", bytes: frame(kind: 0x07, body: le32(1) + le32(0xFFFF_FFF0)), recordsBefore: 0)),
    GoldenVector(
        name: "err_invalid_enum", description: "A LOG with level 9 (levels are 0-6).",
        expect: .error(
            code: "invalid_enum",
            bytes: frame(kind: 0x24, body: [9] + le64(UInt64(t0)) + wireString([0x61]) + wireString([0x62])),
            recordsBefore: 0)),
    GoldenVector(
        name: "err_after_valid_frames", description: "Two valid frames (HELLO, ACK) followed by garbage: the valid ones decode, then the error.",
        expect: .error(
            code: "unknown_kind",
            bytes: try! FrameEncoder().frame(.hello(producerHello)) + FrameEncoder().frame(.ack(durableThrough: 1))
                + frame(kind: 0xEE, body: [0xDE, 0xAD]),
            recordsBefore: 2)),
]
