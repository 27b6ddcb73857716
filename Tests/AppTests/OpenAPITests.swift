@testable import App
import Foundation
import Support
import TestSupport
import XCTest

/// `/openapi.json` describes every `/api/v1` route and the Graph proxy, and describes nothing that does not exist.
final class OpenAPITests: XCTestCase {
    func testEveryAPIRouteIsDescribedAndEveryDescribedRouteExists() async throws {
        let h = try await AppHarness(["QUEUE_WORKER": "off"])
        let r = try h.client().exchange("GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 200, "public, no key needed")
        let doc = try JSONValue.parse(r.body)
        XCTAssertEqual(doc["openapi"]?.stringValue, "3.1.0")
        guard case .object(let paths) = doc["paths"] ?? .null else { return XCTFail("no paths") }
        var described = Set<String>()
        for (path, ops) in paths {
            guard case .object(let methods) = ops else { continue }
            for (method, op) in methods {
                described.insert("\(method.uppercased()) \(path)")
                XCTAssertNotNil(op["responses"], "\(method) \(path) has responses")
                for name in OpenAPI.pathParameters(path) {
                    XCTAssertTrue(op["parameters"]?.arrayValue?.contains { $0["name"]?.stringValue == name && $0["in"]?.stringValue == "path" } == true,
                                  "\(method) \(path) describes {\(name)}")
                }
            }
        }
        let registered = Set(h.app.routeTable
            .filter { $0.1.hasPrefix("/api/v1") || $0.1.hasPrefix("/:version") || $0.1.hasPrefix("/platform/v1") }
            .map { "\($0.0) \(OpenAPI.openAPIPath($0.1))" })
        XCTAssertFalse(registered.isEmpty)
        XCTAssertEqual(registered.subtracting(described), [], "registered but not described")
        XCTAssertEqual(described.subtracting(registered), [], "described but not registered")
        await h.stop()
    }
}
