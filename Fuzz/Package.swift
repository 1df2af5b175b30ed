// swift-tools-version:6.1
// The libFuzzer harnesses: a package of their own, built and run by `scripts/fuzz` (read its header first).
// The main package does not know about this folder, so `swift build` and `swift test` never compile it.
//
// The code under test is the real code: Sources/SwitchboardBasics, Sources/SwitchboardProto and
// Sources/SwitchboardCore here are symlinks to the main package's folders, and
// Sources/SwitchboardWebSocket holds symlinks to the files of Sources/SwitchboardServer/WebSocket that
// `WebSocketSessionHandler` needs (the RFC 6455 layer, which imports nothing but NIO). Only these four modules are instrumented for coverage; NIO, SwiftProtobuf
// and the harnesses themselves are built as usual.
//
// If the fuzz build fails with "cannot find X in scope" after a change in the main package, the code under
// test grew a dependency: symlink its file into Sources/SwitchboardWebSocket
// (`ln -s ../../../Sources/SwitchboardServer/WebSocket/X.swift Fuzz/Sources/SwitchboardWebSocket/`), or
// add the package to `dependencies` below.
import PackageDescription

/// The sanitizers the instrumented modules are built with: `fuzzer` (coverage only, the default) or, for a
/// deeper and slower local run, `FUZZ_SANITIZERS=fuzzer,address scripts/fuzz`.
let sanitizers = Context.environment["FUZZ_SANITIZERS"] ?? "fuzzer"

let instrumented: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .unsafeFlags(["-sanitize=\(sanitizers)"]),
]
let harness: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]
/// Links libFuzzer (and its driver, `LLVMFuzzerRunDriver`) into a harness.
let linkLibFuzzer: [LinkerSetting] = [.unsafeFlags(["-sanitize=\(sanitizers)"])]

let package = Package(
    name: "switchboard-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The same requirements as the main package's Package.swift.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        // Code under test (symlinked sources, instrumented).
        .target(name: "SwitchboardBasics", swiftSettings: instrumented),
        .target(
            name: "SwitchboardProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: instrumented
        ),
        .target(
            name: "SwitchboardCore",
            dependencies: [
                "SwitchboardBasics",
                "SwitchboardProto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: instrumented
        ),
        // glibc's malloc_trim and mallopt, for MemoryReturn.swift (symlinked like the main package's module).
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "SwitchboardWebSocket",
            dependencies: [
                "CMalloc",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: instrumented
        ),

        // libFuzzer's driver, declared for Swift; `runFuzzer` and `check` for the harnesses.
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: harness),

        // The harnesses: one executable each, run by scripts/fuzz with Corpus/<name> as its seeds.
        .executableTarget(
            name: "FuzzWebSocketFrames",
            dependencies: [
                "FuzzSupport",
                "SwitchboardWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: harness,
            linkerSettings: linkLibFuzzer
        ),
        .executableTarget(
            name: "FuzzChatMessageIntake",
            dependencies: ["FuzzSupport", "SwitchboardCore", "SwitchboardProto"],
            swiftSettings: harness,
            linkerSettings: linkLibFuzzer
        ),
        .executableTarget(
            name: "FuzzSignalJSON",
            dependencies: ["FuzzSupport", "SwitchboardCore"],
            swiftSettings: harness,
            linkerSettings: linkLibFuzzer
        ),
    ]
)
