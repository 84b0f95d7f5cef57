// logd-demo: a small, runnable "trainer" that logs what a real training loop logs — a nested
// config, per-step loss, per-epoch validation accuracy, per-layer gradient norms, a dataset,
// a model and a saved model version, and text lines (also through swift-log) — into logd.
//
//   logd-demo [--socket PATH] [--experiment NAME] [--name NAME] [--steps N] [--epochs N]
//             [--lr X] [--fork] [--buffer-bytes N] [--finish-timeout S] [--pause-ms N]
//
// It prints its delivery report as the last line: `delivery: logged N, acknowledged N, ...`.
import LogSDK
import LogSDKLogging
import Logging
import Wire

#if canImport(Glibc)
    import Glibc
#endif

struct Options {
    var socket: String?
    var experiment = "demo"
    var name = "baseline"
    var steps = 100
    var epochs = 3
    var lr = 1e-3
    var fork = false
    var bufferBytes = 64 << 20
    var finishTimeout = 10.0
    var pauseMs = 0
    var runID: String?

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 1
        func value() -> String {
            i += 1
            guard i < args.count else { usage("missing value for \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--socket": o.socket = value()
            case "--experiment": o.experiment = value()
            case "--name": o.name = value()
            case "--run-id": o.runID = value()
            case "--steps": o.steps = parse(Int.self, value(), "--steps takes an integer")
            case "--epochs": o.epochs = parse(Int.self, value(), "--epochs takes an integer")
            case "--lr": o.lr = parse(Double.self, value(), "--lr takes a number")
            case "--buffer-bytes": o.bufferBytes = parse(Int.self, value(), "--buffer-bytes takes an integer")
            case "--finish-timeout": o.finishTimeout = parse(Double.self, value(), "--finish-timeout takes seconds")
            case "--pause-ms": o.pauseMs = parse(Int.self, value(), "--pause-ms takes an integer")
            case "--fork": o.fork = true
            case "-h", "--help": usage(nil)
            default: usage("unknown option \(args[i])")
            }
            i += 1
        }
        return o
    }

    static func parse<T: LosslessStringConvertible>(_: T.Type, _ text: String, _ error: String) -> T {
        guard let v = T(text) else { usage(error) }
        return v
    }

    static func usage(_ error: String?) -> Never {
        if let error { print("logd-demo: \(error)") }
        print("usage: logd-demo [--socket PATH] [--experiment NAME] [--name NAME] [--run-id ID] [--steps N] [--epochs N]")
        print("                 [--lr X] [--fork] [--buffer-bytes N] [--finish-timeout S] [--pause-ms N]")
        exit(error == nil ? 0 : 2)
    }
}

let o = Options.parse(CommandLine.arguments)
let config: Value = [
    "model": ["type": "SmallCNN", "layers": [["type": "Conv2d", "kernel_size": 3, "channels": 32], ["type": "Linear", "out": 10]]],
    "optimizer": ["type": "AdamW", "lr": .double(o.lr), "betas": [0.9, 0.999], "weight_decay": 0.01],
    "data": ["name": "mnist", "batch_size": 64, "shuffle": true, "num_workers": 2],
    "epochs": .int(Int64(o.epochs)),
    "seed": 42,
]
let run = Run(
    experiment: o.experiment, name: o.name, config: config, tags: ["demo"], seed: 42, runID: o.runID,
    sink: .daemon(socket: o.socket), bufferBytes: o.bufferBytes)
LoggingSystem.bootstrap { RunLogHandler(label: $0, run: run) }
let logger = Logger(label: "train")

let loss = run.key("loss", context: .training)
let valAccuracy = run.key("accuracy", context: .validation)
let layers = ["conv1", "conv2", "fc"]
let gradNorms = layers.map { run.key("grad_norm", context: .training, source: $0) }
run.logDataset(label: "mnist-train", context: .training, samples: 60_000, batchSize: 64, workers: 2, shuffle: true)
run.logModel(
    name: "SmallCNN", parameterCount: 421_642, memoryBytes: 1_686_568,
    layers: [["name": "conv1", "parameters": 320], ["name": "conv2", "parameters": 18_496], ["name": "fc", "parameters": 402_826]])
logger.info("starting training", metadata: ["epochs": "\(o.epochs)", "steps": "\(o.steps)"])

var child: pid_t = 0
if o.fork {
    // Let the daemon see this process's RUN_START first, so the worker joins the open run.
    run.flush(timeout: o.finishTimeout)
    child = fork()
    if child == 0 {
        // A DataLoader-like worker: logs on its own producer session of the same run.
        let worker = run.key("worker_batches", context: .training, source: "worker")
        for i in 0..<50 { run.metric(worker, Double(i), step: Int64(i)) }
        run.log("worker done", logger: "worker")
        let report = run.finish(timeout: o.finishTimeout)
        print("worker delivery: \(report)")
        exit(report.completed ? 0 : 1)
    }
}

var step: Int64 = 0
var rng = SystemRandomNumberGenerator()
for epoch in 0..<o.epochs {
    for _ in 0..<o.steps {
        let l = 2.3 * exp(-Double(step) / Double(max(1, o.steps * o.epochs) / 3 + 1)) + Double.random(in: 0..<0.05, using: &rng)
        run.metric(loss, l, step: step)
        for (i, h) in gradNorms.enumerated() { run.metric(h, l * Double(i + 1) * 0.1, step: step) }
        step += 1
        if o.pauseMs > 0 { usleep(UInt32(o.pauseMs) * 1000) }
    }
    let acc = min(0.99, 0.7 + 0.08 * Double(epoch))
    run.metric(valAccuracy, acc, step: step)
    logger.info("epoch \(epoch) done", metadata: ["val_accuracy": "\(acc)"])
    let checkpoint = "/tmp/logd-demo-\(getpid())-model.bin"
    if let f = fopen(checkpoint, "wb") {
        let bytes = [UInt8](repeating: UInt8(epoch), count: 4096)
        fwrite(bytes, 1, bytes.count, f)
        fclose(f)
        if !run.saveModelVersion(name: "SmallCNN", path: checkpoint, step: step) {
            logger.warning("could not save model version: \(run.lastError ?? "?")")
        }
        unlink(checkpoint)
    }
}
logger.info("training finished")
if child > 0 {
    // Join the worker before ending the run, as a training script joins its data loader.
    var status: Int32 = 0
    waitpid(child, &status, 0)
}
let report = run.finish(timeout: o.finishTimeout)
print("delivery: \(report)")
exit(report.completed ? 0 : 1)
