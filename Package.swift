// swift-tools-version:6.0
import PackageDescription

/// `WHYCACHE_SANITIZE=thread` or `=address` (set by scripts/sanitize.sh, never by a user of the
/// package): the package's own targets are compiled and linked with that sanitizer. The test target
/// is only linked with it: swift-testing's test records cannot be compiled with a sanitizer (Swift
/// 6.3.1), so `swift build --sanitize=` cannot build the tests. With ThreadSanitizer, `Locked` tells
/// the sanitizer about its locks (WHYCACHE_THREAD_SANITIZER), and the compiler's async
/// debug-information pass, which does not finish on WhyCache at -Onone, is turned off.
let sanitizer = Context.environment["WHYCACHE_SANITIZE"]
let sanitizerFlags = sanitizer.map { sanitizer -> [String] in
    ["-sanitize=\(sanitizer)"]
        + (sanitizer == "thread"
            ? ["-D", "WHYCACHE_THREAD_SANITIZER", "-Xllvm", "-sil-disable-pass=sil-moved-async-var-dbginfo-propagator"] : [])
}
let sanitized: [SwiftSetting] = sanitizerFlags.map { [.unsafeFlags($0)] } ?? []
let sanitizedLink: [LinkerSetting] = sanitizer.map { [.unsafeFlags(["-sanitize=\($0)"])] } ?? []

let package = Package(
    name: "WhyCache",
    // Linux only: the state file relies on Linux system calls (open-file-description
    // locks, posix_fallocate, renameat2, /proc), and only Linux builds are tested.
    products: [
        .library(name: "WhyCache", targets: ["WhyCache"]),
        .library(name: "WhyCacheMySQL", targets: ["WhyCacheMySQL"]),
        .executable(name: "whycache-tool", targets: ["whycache-tool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // `swift package generate-documentation` (a command plugin: nothing of it is linked).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Tiny C helpers the Swift compiler cannot express (cache prefetch hints).
        .target(name: "CWhyCacheSupport"),
        // The system zlib (Debian: zlib1g-dev), found through pkg-config: gzip snapshots.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The platform layer: system calls, locks, byte encodings and the size limits every
        // layer shares. Its declarations are `package` (or public, where the API shows them).
        .target(
            name: "WhyCacheSupport",
            dependencies: ["CWhyCacheSupport"],
            swiftSettings: sanitized
        ),
        // The shared state file: the mapped prefix tree, its allocator, readers and writer.
        // It sees only WhyCacheSupport; the cache above it sees what it declares `package`.
        .target(
            name: "WhyCacheState",
            dependencies: [
                "CWhyCacheSupport",
                "WhyCacheSupport",
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: sanitized
        ),
        // The cache, the log, the datastores, snapshots and maintenance (the library's API;
        // it re-exports the public types of the two targets below it).
        .target(
            name: "WhyCache",
            dependencies: [
                "CWhyCacheSupport",
                "CZlib",
                "WhyCacheState",
                "WhyCacheSupport",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sanitized
        ),
        // libmariadb (Debian: libmariadb-dev), found through pkg-config.
        .systemLibrary(
            name: "CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),
        // The MySQL/MariaDB datastore.
        .target(
            name: "WhyCacheMySQL",
            dependencies: ["WhyCache", "CMariaDB"],
            swiftSettings: sanitized
        ),
        .executableTarget(
            name: "whycache-tool",
            dependencies: [
                "WhyCache",
                "WhyCacheMySQL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        // Workloads shared by the tests and the test helper (not a product).
        .target(name: "WhyCacheTestSupport", dependencies: ["WhyCacheMySQL"], swiftSettings: sanitized),
        // Spawned by the tests as a real separate process (readers, writers, crash victims).
        .executableTarget(
            name: "whycache-test-helper",
            dependencies: [
                "WhyCache", "WhyCacheMySQL", "WhyCacheTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        .testTarget(
            name: "WhyCacheTests",
            dependencies: [
                "WhyCache", "WhyCacheMySQL", "WhyCacheTestSupport", "whycache-test-helper",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: sanitizedLink
        ),
    ]
)
