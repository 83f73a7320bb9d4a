// swift-tools-version: 6.1
// MetaQ for Swift — a MetaQ 1.4.6 compatible message queue.
// Module rule (docs: ../shared/DESIGN.md §2): ProtocolCore ← StoreCore ← BrokerCore ← {Runtime, Sim} ← executables.
// ProtocolCore, StoreCore and BrokerCore import nothing but the standard library and swift-collections.
import PackageDescription

let package = Package(
    name: "MetaQ",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ProtocolCore", targets: ["ProtocolCore"]),
        .library(name: "StoreCore", targets: ["StoreCore"]),
        .library(name: "BrokerCore", targets: ["BrokerCore"]),
        .library(name: "Runtime", targets: ["Runtime"]),
        .library(name: "Sim", targets: ["Sim"]),
        .library(name: "MetaQClient", targets: ["MetaQClient"]),
        .executable(name: "metaq-server", targets: ["MetaQServer"]),
        .executable(name: "metaq", targets: ["MetaQTool"]),
        .executable(name: "metaq-sim", targets: ["MetaQSim"]),
        .executable(name: "metaq-fuzz", targets: ["MetaQFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // /metrics: Prometheus text exposition (issue 19); swift-prometheus brings swift-atomics.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Pure: wire codec, record format, CRC32, message ids.
        .target(
            name: "ProtocolCore",
            dependencies: [.product(name: "DequeModule", package: "swift-collections")],
            exclude: ["README.md"]
        ),
        // Pure logic over the `Storage` interface: partition log, flush policy, recovery, retention, cron.
        .target(
            name: "StoreCore",
            dependencies: ["ProtocolCore", .product(name: "DequeModule", package: "swift-collections")],
            exclude: ["README.md"]
        ),
        // Pure: the broker node — machine, stores and commit pipeline as one events-in, actions-out
        // value that the runtime and the simulator both drive (DESIGN.md §4).
        .target(name: "BrokerCore", dependencies: ["ProtocolCore", "StoreCore"], exclude: ["README.md"]),
        // zlib, for the zip archiver of retention (`archive,<age>,true`) and the CRC32 comparison benchmark.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The ZooKeeper C client (libzookeeper_mt), for the Runtime's coordination session.
        .systemLibrary(name: "CZooKeeper", providers: [.apt(["libzookeeper-mt-dev"])]),
        // The Linux runtime: real files (pwrite/pread/fdatasync/mmap), sockets, the ZooKeeper session.
        .target(
            name: "Runtime",
            dependencies: [
                "ProtocolCore", "StoreCore", "BrokerCore", "CZlib", "CZooKeeper",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["README.md"]
        ),
        // metaq-server: argument parsing and wiring only; the broker links jemalloc.
        .executableTarget(
            name: "MetaQServer",
            dependencies: [
                "Runtime", "BrokerCore", "StoreCore", "ProtocolCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),
        // The deterministic simulator: seeded PRNG, SimDisk with power loss, the simulated network,
        // broker/producer/consumer drivers of the production machines, faults and checkers.
        .target(name: "Sim", dependencies: ["ProtocolCore", "StoreCore", "BrokerCore"], exclude: ["README.md"]),

        // The Swift client library: producers, consumer groups, over Runtime's sockets and ZooKeeper.
        .target(
            name: "MetaQClient",
            dependencies: [
                "ProtocolCore", "StoreCore", "Runtime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),

        // metaq: produce, consume, stats, cluster over the MetaQ wire and ZooKeeper.
        .executableTarget(
            name: "MetaQTool",
            dependencies: [
                "Runtime", "ProtocolCore", "StoreCore", "MetaQClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            exclude: ["README.md"]
        ),
        // metaq-sim: the simulator's command line (--seed, --sweep, --trace, --canary).
        .executableTarget(
            name: "MetaQSim",
            dependencies: ["Sim", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            exclude: ["README.md"]
        ),
        // Fuzz targets (frames through the broker machine, server.ini, recovery) and their
        // libFuzzer binary (scripts/fuzz.sh); the tests replay the corpus through the library.
        .target(name: "FuzzTargets", dependencies: ["ProtocolCore", "StoreCore", "BrokerCore", "Sim"], path: "Fuzz/FuzzTargets"),
        .executableTarget(name: "MetaQFuzz", dependencies: ["FuzzTargets"], path: "Fuzz/MetaQFuzz"),
        .executableTarget(
            name: "MicroBench",
            dependencies: ["ProtocolCore", "StoreCore", "Runtime", "Sim", "CZlib"],
            path: "Benchmarks/MicroBench"
        ),

        .testTarget(name: "ProtocolCoreTests", dependencies: ["ProtocolCore", "Sim"]),
        .testTarget(name: "StoreCoreTests", dependencies: ["StoreCore", "Sim"]),
        .testTarget(name: "BrokerCoreTests", dependencies: ["BrokerCore", "ProtocolCore", "StoreCore", "Sim"]),
        // Spawning and reaping child processes for the tests (posix_spawn, by pid); not a product.
        .target(name: "ProcessHarness", path: "Tests/ProcessHarness"),
        .testTarget(
            name: "RuntimeTests",
            dependencies: ["Runtime", "BrokerCore", "StoreCore", "ProtocolCore", "CZlib", "CZooKeeper", "ProcessHarness",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Prometheus", package: "swift-prometheus")]
        ),
        // Real metaq-server and ZooKeeper processes on 127.0.0.1, started and stopped by PID.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ProtocolCore", "StoreCore", "Runtime", "MetaQClient", "ProcessHarness",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "MetaQClientTests", dependencies: ["MetaQClient", "ProtocolCore"]),
        .testTarget(name: "SimTests", dependencies: ["Sim", "StoreCore"]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "ProtocolCore", "Sim"]),
        .testTarget(
            name: "SimulationTests",
            dependencies: ["Sim", "StoreCore", "ProtocolCore"],
            path: "SimTests/SimulationTests"
        ),
    ]
)
