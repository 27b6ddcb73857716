// swift-tools-version:6.0
// Wasla: one binary, no Swift package dependencies. Only the toolchain and system C libraries
// reached through module maps (see DESIGN.md, "Fixed by the customer").
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Wasla",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "wasla", targets: ["App"]),
    ],
    targets: [
        // C shims. CLinux is a real C target so `_GNU_SOURCE` stays inside its .c file.
        .target(name: "CLinux", path: "Sources/CLinux"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite",
                       providers: [.apt(["libsqlite3-dev"])]),
        // The WAL write-combining VFS (wal_combine.c), a C target over SQLite's own headers and library.
        .target(name: "CSQLiteVFS", dependencies: ["CSQLite"], path: "Sources/CSQLiteVFS"),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto",
                       providers: [.apt(["libssl-dev"])]),
        // libcurl is loaded with dlopen on first use (its headers come from libcurl4-openssl-dev): Sources/CCurl.
        .target(name: "CCurl", path: "Sources/CCurl"),

        // Swift modules, arrows as in DESIGN.md: Support <- HTTP, Store <- Actors <- App.
        .target(name: "Support", path: "Sources/Support", swiftSettings: strict),
        .target(name: "HTTP", dependencies: ["CLinux", "Support"], path: "Sources/HTTP", swiftSettings: strict),
        .target(name: "Store", dependencies: ["CSQLite", "CSQLiteVFS", "Support"], path: "Sources/Store", swiftSettings: strict),
        .target(name: "Actors", dependencies: ["Store", "Support", "CCrypto", "CCurl"], path: "Sources/Actors",
                swiftSettings: strict),
        .executableTarget(name: "App", dependencies: ["HTTP", "Store", "Actors", "Support", "CLinux"],
                          path: "Sources/App", swiftSettings: strict),

        // Test support: a raw-socket HTTP client and loopback fakes, shared by every test target.
        .target(name: "TestSupport", dependencies: ["CLinux", "HTTP", "Support"], path: "Tests/TestSupport",
                swiftSettings: strict),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Support", "TestSupport"], path: "Tests/HTTPTests",
                    swiftSettings: strict),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Support", "TestSupport"], path: "Tests/StoreTests",
                    swiftSettings: strict),
        .testTarget(name: "AppTests", dependencies: ["App", "HTTP", "Store", "Actors", "Support", "TestSupport"],
                    path: "Tests/AppTests", swiftSettings: strict),

        // Benchmarks: built with -c release by `make bench`, never timed inside `swift test`.
        .executableTarget(name: "LoadGen", dependencies: ["CLinux", "CCrypto"], path: "Benchmarks/LoadGen",
                          swiftSettings: strict),
        .executableTarget(name: "StoreBench", dependencies: ["Store", "Support", "CSQLite", "CSQLiteVFS"], path: "Benchmarks/StoreBench",
                          swiftSettings: strict),
        .executableTarget(name: "ProcessBench", dependencies: ["Actors", "Store", "Support"],
                          path: "Benchmarks/ProcessBench", swiftSettings: strict),
        .executableTarget(name: "SignatureBench", dependencies: ["Actors", "CCrypto", "Support"],
                          path: "Benchmarks/SignatureBench", swiftSettings: strict),
        // Fuzzing (make fuzz): a libFuzzer binary with -DFUZZING, a replayer of saved inputs otherwise.
        .executableTarget(name: "FuzzHarness", dependencies: ["HTTP", "Actors", "Support"], path: "Fuzz/Harness",
                          swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "ParserBench", dependencies: ["HTTP"], path: "Benchmarks/ParserBench",
                          swiftSettings: strict),
    ]
)
