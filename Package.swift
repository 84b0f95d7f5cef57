// swift-tools-version:6.0
// logd: a local run-logging daemon and a lightweight SDK for people who train models.
//
// The module graph is the architecture (docs/ARCHITECTURE.md draws it):
//   CLibUV, CYAML  — system libraries (apt: libuv1-dev, libyaml-dev), found by pkg-config
//   Wire           — the binary protocol: pure Swift, no I/O, no Foundation
//   LogSDK         — linked into training processes: Wire + Glibc only, never libuv or libyaml
//   LogdSystem     — libc helpers both sides of the disk share: errors, files, locks, time, paths
//   LogdRead       — reading run directories and the control client (logctl's world; no libuv)
//   LogdCore       — the daemon (loop, writer, recovery): the only target that imports CLibUV
//   logd, logctl   — thin executables
import PackageDescription

let package = Package(
    name: "logd",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "LogSDK", targets: ["LogSDK"]),
        .library(name: "LogSDKLogging", targets: ["LogSDKLogging"]),
        .executable(name: "logd", targets: ["logd"]),
        .executable(name: "logctl", targets: ["logctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // HTTP(S) for the MLflow forwarder: libcurl (apt libcurl4-openssl-dev), the client most
        // tracking servers are tested against; TLS, proxies and auth come with it.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(name: "Wire"),
        .target(name: "LogSDK", dependencies: ["Wire"]),
        // swift-log bridge: `Logger` calls land in the run's main.log. Kept apart so LogSDK stays Wire-only.
        .target(
            name: "LogSDKLogging",
            dependencies: ["LogSDK", "Wire", .product(name: "Logging", package: "swift-log")]
        ),
        // The demo trainer: logs what a real training loop logs (README, tests).
        .executableTarget(
            name: "logd-demo",
            dependencies: ["LogSDK", "LogSDKLogging", "Wire", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "LogdSystem"),
        // TensorBoard event files (TFRecord framing, CRC-32C, hand-encoded Event protobufs): pure
        // Swift, no I/O; the daemon writes them live, logctl exports runs already on disk.
        .target(
            name: "TensorBoardEvents", dependencies: ["Wire"],
            // The writer's per-metric path (EventBuffer's stores): no dynamic exclusivity checks in release, as LogdCore.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .target(name: "LogdRead", dependencies: ["Wire", "CYAML", "LogdSystem"]),
        // Forwards durable runs to an MLflow tracking server on a thread of its own (docs/MLFLOW.md).
        .target(name: "LogdForward", dependencies: ["LogdRead", "LogdSystem", "Wire", "CCurl"]),
        .target(
            name: "LogdCore", dependencies: ["Wire", "CLibUV", "CYAML", "LogdSystem", "TensorBoardEvents"],
            // Profiling (callgrind) showed ~20% of the daemon's instructions in dynamic
            // exclusivity checks on class properties; release builds skip them. Debug keeps them.
            swiftSettings: [
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
                // `@_extern(c)`: the runtime's allocation-free double formatter (MetricLine.swift).
                .enableExperimentalFeature("Extern"),
            ]
        ),
        .executableTarget(
            name: "logd",
            dependencies: ["LogdCore", "LogdSystem", "LogdForward", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "logctl",
            dependencies: ["LogdRead", "LogdSystem", "Wire", "TensorBoardEvents", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // A raw Wire client that logs a known pattern and resends after reconnects (tests, benchmarks).
        .executableTarget(
            name: "wire-producer",
            dependencies: ["LogdRead", "LogdSystem", "Wire", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Counts heap allocations in the benchmark process (interposes malloc and friends).
        .target(name: "CAllocCounter"),
        // The benchmark (docs/PERFORMANCE.md): run it in release mode, `make bench`.
        .executableTarget(
            name: "logd-bench", dependencies: ["LogSDK", "LogdCore", "LogdRead", "LogdSystem", "Wire", "CAllocCounter"],
            swiftSettings: [.swiftLanguageMode(.v5)]  // a top-level script: globals on one thread
        ),
        // libFuzzer target for the decoder; a normal build replays files (see its main.swift).
        .executableTarget(name: "wire-fuzz", dependencies: ["Wire"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TensorBoardEventsTests", dependencies: ["TensorBoardEvents", "Wire"]),
        .testTarget(name: "LogSDKTests", dependencies: ["LogSDK", "LogSDKLogging", "Wire"]),
        .testTarget(name: "LogdCoreTests", dependencies: ["LogdCore", "LogdRead", "LogdSystem", "LogSDK", "Wire", "LogdForward"]),
    ],
    swiftLanguageModes: [.v6]
)
