// swift-tools-version:6.2
import Foundation
import PackageDescription

// The WhyCache checkout this example lives in (two folders up). A path dependency is named after
// its folder, whatever the clone is called; an application of yours names WhyCache by URL instead.
let whycache = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()

// A feature-flag service on Hummingbird 2 that serves flags from a WhyCache shared-state file,
// writes through an admin route, keeps the cache current with BackgroundUpdater in the
// application's ServiceGroup, and exposes the cache's metrics at /metrics (Prometheus).
let package = Package(
    name: "FlagService",
    dependencies: [
        .package(path: whycache.path),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "FlagService",
            dependencies: [
                .product(name: "WhyCache", package: whycache.lastPathComponent),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Starts the built service as processes (`swift build --build-tests` builds it too).
        .testTarget(name: "FlagServiceTests"),
    ]
)
