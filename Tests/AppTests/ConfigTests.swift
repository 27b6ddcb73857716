@testable import App
import Foundation
import Store
import Support
import TestSupport
import XCTest

final class ConfigTests: XCTestCase {
    func load(_ values: [String: String]) throws -> Config {
        try Config.load(from: Environment(values: values))
    }

    func errors(_ values: [String: String]) -> [ConfigError] {
        do {
            _ = try load(values)
            return []
        } catch let e as ConfigErrors {
            return e.errors
        } catch {
            return [ConfigError(variable: "?", problem: "\(error)")]
        }
    }

    func testDefaults() throws {
        let c = try load([:])
        XCTAssertEqual(c.host, "0.0.0.0")
        XCTAssertEqual(c.port, 8080)
        XCTAssertEqual(c.dataDirectory, "./data")
        XCTAssertEqual(c.databasePath, "./data/wasla.sqlite")
        XCTAssertEqual(c.whatsappAPIVersion, "v21.0")
        XCTAssertEqual(c.whatsappGraphURL, "https://graph.facebook.com")
        XCTAssertEqual(c.logLevel, .info)
        XCTAssertEqual(c.logFormat, .json)
        XCTAssertEqual(c.http.limits.maxHeaderBytes, 16 * 1024)
        XCTAssertEqual(c.webhookMaxBodyBytes, 4 * 1024 * 1024)
        XCTAssertNil(c.whatsappAppSecret)
    }

    func testLegacyAliasesMapToCanonicalNames() throws {
        let c = try load(["VERIFY_TOKEN": "vt", "APP_SECRET": "as", "META_TOKEN": "mt",
                          "NEXT_PUBLIC_SUPABASE_URL": "https://p.supabase.co"])
        XCTAssertEqual(c.whatsappVerifyToken, "vt")
        XCTAssertEqual(c.whatsappAppSecret, "as")
        XCTAssertEqual(c.whatsappAccessToken, "mt")
        XCTAssertEqual(c.supabaseURL, "https://p.supabase.co")
        XCTAssertEqual(c.aliasesUsed["WHATSAPP_APP_SECRET"], "APP_SECRET")
        XCTAssertEqual(try load(["WEBHOOK_VERIFY_TOKEN": "w"]).whatsappVerifyToken, "w")
        XCTAssertEqual(try load(["ACCESS_TOKEN": "a"]).whatsappAccessToken, "a")
    }

    func testCanonicalNameWinsOverAlias() throws {
        let c = try load(["WHATSAPP_APP_SECRET": "canonical", "APP_SECRET": "legacy",
                          "WHATSAPP_ACCESS_TOKEN": "tok", "META_TOKEN": "old"])
        XCTAssertEqual(c.whatsappAppSecret, "canonical")
        XCTAssertEqual(c.whatsappAccessToken, "tok")
        XCTAssertNil(c.aliasesUsed["WHATSAPP_APP_SECRET"])
    }

    func testEachValidationErrorNamesTheVariable() {
        let cases: [([String: String], String)] = [
            (["PORT": "http"], "PORT"),
            (["PORT": "70000"], "PORT"),
            (["HOST": "localhost"], "HOST"),
            (["LOG_LEVEL": "verbose"], "LOG_LEVEL"),
            (["LOG_FORMAT": "xml"], "LOG_FORMAT"),
            (["WHATSAPP_API_VERSION": "21"], "WHATSAPP_API_VERSION"),
            (["WEBHOOK_RATE_LIMIT_MAX": "0"], "WEBHOOK_RATE_LIMIT_MAX"),
            (["WEBHOOK_RATE_LIMIT_WINDOW_SEC": "ten"], "WEBHOOK_RATE_LIMIT_WINDOW_SEC"),
            (["QUEUE_RATE_LIMIT_MAX": "-3"], "QUEUE_RATE_LIMIT_MAX"),
            (["QUEUE_RATE_LIMIT_WINDOW_SEC": "1.5"], "QUEUE_RATE_LIMIT_WINDOW_SEC"),
            (["ERP_API_URL": "ftp://erp"], "ERP_API_URL"),
            (["CRM_API_URL": "https://user:pw@crm.example"], "CRM_API_URL"),
            (["WHATSAPP_GRAPH_URL": "graph.facebook.com"], "WHATSAPP_GRAPH_URL"),
            (["SESSION_SECRET": "short"], "SESSION_SECRET"),
            (["BASIC_AUTH_USERS": "admin@example.com:pw"], "BASIC_AUTH_USERS"),
            (["BASIC_AUTH_USERS": "admin@example.com:pw:root"], "BASIC_AUTH_USERS"),
            (["BASIC_AUTH_USERS": "nobody:pw:admin"], "BASIC_AUTH_USERS"),
            (["BASIC_AUTH_USERS": "a@b.c::admin"], "BASIC_AUTH_USERS"),
            (["HTTP_HEADER_TIMEOUT_SEC": "0"], "HTTP_HEADER_TIMEOUT_SEC"),
            (["AI_API_URL": "http://127.0.0.1:9/v1"], "AI_MODEL"),
            (["QUEUE_WORKER": "sometimes"], "QUEUE_WORKER"),
        ]
        for (values, variable) in cases {
            let found = errors(values)
            XCTAssertEqual(found.map(\.variable), [variable], "for \(values)")
            XCTAssertFalse(found.first?.problem.isEmpty ?? true)
        }
    }

    func testErrorsNeverEchoSecretValues() {
        let found = errors(["BASIC_AUTH_USERS": "ops@example.com:Sup3rSecret!:superuser"])
        XCTAssertEqual(found.count, 1)
        XCTAssertFalse(found[0].description.contains("Sup3rSecret!"))
    }

    func testAllErrorsReportedAtOnce() {
        XCTAssertEqual(Set(errors(["PORT": "x", "LOG_LEVEL": "loud"]).map(\.variable)), ["PORT", "LOG_LEVEL"])
    }

    func testBasicAuthUsersSplitAtFirstAndLastColon() throws {
        let c = try load(["BASIC_AUTH_USERS": "a@x.io:pa:ss:word:admin, b@x.io:p2:Viewer"])
        XCTAssertEqual(c.basicAuthUsers, [BasicAuthUser(email: "a@x.io", password: "pa:ss:word", role: "admin"),
                                          BasicAuthUser(email: "b@x.io", password: "p2", role: "viewer")])
        XCTAssertTrue(c.secrets.contains("pa:ss:word"))
    }

    func testURLsLoseTrailingSlash() throws {
        XCTAssertEqual(try load(["WHATSAPP_GRAPH_URL": "http://127.0.0.1:9000/"]).whatsappGraphURL,
                       "http://127.0.0.1:9000")
    }

    func testEmptyValueCountsAsUnset() throws {
        XCTAssertEqual(try load(["PORT": ""]).port, 8080)
        XCTAssertEqual(try load(["WHATSAPP_APP_SECRET": "", "APP_SECRET": "legacy"]).whatsappAppSecret, "legacy")
    }

    func testMissingSecretsDisableFeaturesWithAReason() throws {
        let features = try load([:]).features
        let webhook = features.first { $0.name.hasPrefix("webhook receive") }
        XCTAssertEqual(webhook?.enabled, false)
        XCTAssertTrue(webhook?.note.contains("WHATSAPP_APP_SECRET") ?? false)
        XCTAssertEqual(try load(["WHATSAPP_APP_SECRET": "s3cret"]).features.first { $0.name.hasPrefix("webhook receive") }?.enabled, true)
    }

    func testDoctorDatabaseReport() async throws {
        let h = try await AppHarness()
        XCTAssertEqual(try h.post("not json").status, 200)
        _ = try await h.app.processor.drain()
        let report = Doctor.databaseReport(h.app.config)
        XCTAssertTrue(report.contains("integrity (PRAGMA quick_check): ok"), report)
        XCTAssertTrue(report.contains("schema version: \(Migrator.latestVersion)"), report)
        XCTAssertTrue(report.contains("WAL writes: combined"), report)
        XCTAssertTrue(report.contains("webhook events: failed 1"), report)
        XCTAssertTrue(report.contains("workflow step patterns: 0, all compile"), report)
        // A step saved by a version that took lookahead: listed with the reason, as it never matches.
        try await h.addStep("auto_reply", position: 1, config: #"{"pattern":"^hi\\b","text":"Hi!"}"#)
        try await h.addStep("auto_reply", position: 2, config: #"{"pattern":"price(?=s)","text":"x"}"#, id: "step-old")
        let withSteps = Doctor.databaseReport(h.app.config)
        XCTAssertTrue(withSteps.contains("workflow step patterns: 1 of 2 do not compile"), withSteps)
        XCTAssertTrue(withSteps.contains("step step-old of workflow"), withSteps)
        XCTAssertTrue(withSteps.contains("lookaround is not supported (at character 6)"), withSteps)
        await h.stop()
        let missing = try Config.load(from: Environment(values: ["DATA_DIR": "/nonexistent/wasla"]))
        XCTAssertTrue(Doctor.databaseReport(missing).contains("not created yet"))
    }

    func testDoctorMasksSecrets() throws {
        let c = try load(["WHATSAPP_APP_SECRET": "app-secret-value", "QUEUE_SECRET": "queue-secret-value",
                          "BASIC_AUTH_USERS": "ops@x.io:hunter2-long:admin", "APP_SECRET": "ignored"])
        let report = Doctor.report(c)
        XCTAssertFalse(report.contains("app-secret-value"))
        XCTAssertFalse(report.contains("queue-secret-value"))
        XCTAssertFalse(report.contains("hunter2-long"))
        XCTAssertTrue(report.contains("ops@x.io (admin)"))
        XCTAssertTrue(report.contains("WHATSAPP_APP_SECRET"))
        // This machine has the tzdata package (.ci/run installs it).
        XCTAssertTrue(report.contains("Time zones (business hours of workflow steps): read from /usr/share/zoneinfo"), report)
    }
}

final class DotEnvTests: XCTestCase {
    func testParsesCommentsExportAndQuotes() throws {
        let text = """
            # comment
            PORT=9090
            export HOST=127.0.0.1
            QUOTED="a \\"b\\" c\\nd" # trailing comment
            SINGLE='literal $x \\n'
            INLINE=value # comment
            EMPTY=
            WINDOWS=crlf\r

            """
        let v = try DotEnv.parse(text)
        XCTAssertEqual(v["PORT"], "9090")
        XCTAssertEqual(v["HOST"], "127.0.0.1")
        XCTAssertEqual(v["QUOTED"], "a \"b\" c\nd")
        XCTAssertEqual(v["SINGLE"], "literal $x \\n")
        XCTAssertEqual(v["INLINE"], "value")
        XCTAssertEqual(v["EMPTY"], "")
        XCTAssertEqual(v["WINDOWS"], "crlf")
    }

    func testBadLinesNameTheLine() {
        XCTAssertThrowsError(try DotEnv.parse("A=1\nnot a pair\n")) { e in
            XCTAssertEqual((e as? DotEnv.ParseError)?.line, 2)
        }
        XCTAssertThrowsError(try DotEnv.parse("A=\"open\n"))
        XCTAssertThrowsError(try DotEnv.parse("1A=x\n"))
    }

    func testProcessEnvironmentWinsOverFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/.env"
        try "PORT=9000\nLOG_LEVEL=debug\nAPP_SECRET=from-file\n".write(toFile: path, atomically: true, encoding: .utf8)
        let env = try Environment.load(processEnvironment: ["PORT": "9001"], dotEnvPath: path)
        let c = try Config.load(from: env)
        XCTAssertEqual(c.port, 9001)
        XCTAssertEqual(c.logLevel, .debug)
        XCTAssertEqual(c.whatsappAppSecret, "from-file")
    }

    func testMissingDotEnvIsFine() throws {
        let env = try Environment.load(processEnvironment: ["PORT": "1"], dotEnvPath: "/nonexistent/.env")
        XCTAssertEqual(env["PORT"], "1")
    }

    func testMalformedDotEnvStopsStartupNamingTheFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/.env"
        try "GOOD=1\noops\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Environment.load(processEnvironment: [:], dotEnvPath: path)) { e in
            XCTAssertEqual((e as? ConfigError)?.variable, ".env")
        }
    }
}

final class CLITests: XCTestCase {
    func testCommands() {
        XCTAssertEqual(try Command.parse([]).get(), .serve)
        XCTAssertEqual(try Command.parse(["serve"]).get(), .serve)
        XCTAssertEqual(try Command.parse(["--help"]).get(), .help)
        XCTAssertEqual(try Command.parse(["version"]).get(), .version)
        XCTAssertEqual(try Command.parse(["doctor"]).get(), .doctor)
        XCTAssertEqual(try Command.parse(["migrate"]).get(), .migrate)
        XCTAssertEqual(try Command.parse(["backup", "/tmp/b.sqlite"]).get(), .backup(path: "/tmp/b.sqlite"))
        XCTAssertEqual(try Command.parse(["restore", "b.sqlite"]).get(), .restore(path: "b.sqlite"))
        XCTAssertThrowsError(try Command.parse(["backup"]).get())
        XCTAssertEqual(try Command.parse(["replay", "--failed"]).get(), .replay(.failed))
        XCTAssertEqual(try Command.parse(["replay", "--event", "abc"]).get(), .replay(.event("abc")))
        XCTAssertEqual(try Command.parse(["replay", "--since", "2023-11-14T22:13:20Z"]).get(), .replay(.since(1_700_000_000_000)))
        XCTAssertEqual(try Command.parse(["replay", "--since", "1970-01-02"]).get(), .replay(.since(86_400_000)))
        XCTAssertEqual(try Command.parse(["replay", "--since", "1700000000"]).get(), .replay(.since(1_700_000_000_000)))
        XCTAssertThrowsError(try Command.parse(["replay", "--since", "yesterday"]).get())
        XCTAssertThrowsError(try Command.parse(["replay"]).get())
        XCTAssertEqual(try Command.parse(["jobs", "list", "--state", "dead"]).get(), .jobsList(state: "dead"))
        XCTAssertEqual(try Command.parse(["jobs", "retry", "j1"]).get(), .jobsRetry(id: "j1"))
        XCTAssertEqual(try Command.parse(["numbers", "set-token", "PN1"]).get(), .setNumberToken(phoneNumberID: "PN1"))
        XCTAssertThrowsError(try Command.parse(["numbers", "set-token"]).get())
        XCTAssertEqual(try Command.parse(["wabas", "set-app-secret", "W1"]).get(), .setAppSecret(wabaID: "W1"))
        XCTAssertEqual(try Command.parse(["keys", "create", "--name", "crm", "--scopes", "read,send"]).get(),
                       .createKey(name: "crm", scopes: ["read", "send"], project: nil))
        XCTAssertThrowsError(try Command.parse(["keys", "create", "--name", "x", "--scopes", "root"]).get())
        XCTAssertThrowsError(try Command.parse(["jobs", "list", "--state", "zombie"]).get())
        XCTAssertThrowsError(try Command.parse(["frobnicate"]).get())
    }
}
