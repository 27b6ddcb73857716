@testable import App
@testable import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// Workflow steps on inbound messages: auto replies, AI replies (a loopback fake AI server), handoff.
final class WorkflowTests: XCTestCase {
    var graph: FakeGraphServer!
    var ai: FakeGraphServer!
    var h: AppHarness!

    override func setUp() async throws {
        graph = try FakeGraphServer()
        ai = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": graph.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_WORKER": "off",
                                  "AI_API_URL": ai.baseURL + "/v1", "AI_API_KEY": "ai-key", "AI_MODEL": "test-model"])
    }

    override func tearDown() async throws {
        await h.stop()
        await graph.stop()
        await ai.stop()
        graph = nil
        ai = nil
        h = nil
    }

    func addStep(_ type: String, position: Int, config: String) async throws {
        try await h.addStep(type, position: position, config: config)
    }

    /// Receives an inbound text, processes it, runs the workflow job, then the send jobs it created.
    func inbound(_ wamid: String, _ text: String) async throws {
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text(wamid, text, timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.jobs.runDue(concurrency: 2, budgetMillis: 5000)  // workflow
        _ = try await h.app.jobs.runDue(concurrency: 2, budgetMillis: 5000)  // sends
    }

    func sentTexts() -> [String] { graph.recorded.compactMap { $0.json?["text"]?["body"]?.stringValue } }

    func testAutoReplyOnKeyword() async throws {
        try await addStep("auto_reply", position: 1, config: #"{"keywords":["price"],"text":"Our prices start at 10 EGP."}"#)
        try await addStep("auto_reply", position: 2, config: #"{"pattern":"^(hi|hello)\\b","text":"Welcome!"}"#)
        try await inbound("wamid.W1", "What is the PRICE of tea?")
        XCTAssertEqual(sentTexts(), ["Our prices start at 10 EGP."])
        try await inbound("wamid.W2", "Hello there")
        XCTAssertEqual(sentTexts(), ["Our prices start at 10 EGP.", "Welcome!"])
        XCTAssertEqual(graph.recorded.last?.json?["to"]?.stringValue, "15550000001")
        // Running the workflow job again (a lease expired) sends nothing twice.
        try await h.app.database.write { try $0.run("UPDATE message_jobs SET status = 'pending', run_at = 0 WHERE type = 'workflow.inbound'") }
        _ = try await h.app.jobs.runDue(concurrency: 2, budgetMillis: 5000)
        _ = try await h.app.jobs.runDue(concurrency: 2, budgetMillis: 5000)
        XCTAssertEqual(sentTexts().count, 2)
    }

    /// A pattern that makes a backtracking engine take exponential time, against a customer's text built to
    /// trigger it: the workflow job finishes (Swift's `Regex` took 43 s on 20 characters of this shape), sends
    /// nothing for it, and still replies to a text that matches.
    func testACatastrophicPatternDoesNotStallTheWorkflow() async throws {
        try await addStep("auto_reply", position: 1, config: #"{"pattern":"^(\\w+\\s?)+$","text":"Words only, thanks."}"#)
        try await inbound("wamid.R1", String(repeating: "word ", count: 60) + "!")
        XCTAssertEqual(sentTexts(), [])
        let workflowJobs = try await h.app.database.read {
            try $0.query("SELECT status FROM message_jobs WHERE type = 'workflow.inbound'") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(workflowJobs, ["done"])
        try await inbound("wamid.R2", "just some words")
        XCTAssertEqual(sentTexts(), ["Words only, thanks."])
    }

    func testAIReplyUsesTheConversationAsContext() async throws {
        try await h.app.database.write { try $0.run("UPDATE workflows SET ai_enabled = 1") }
        try await addStep("ai_reply", position: 1, config: #"{"system_prompt":"You sell tea in Cairo."}"#)
        ai.answerNext(.init(status: .ok, body: #"{"choices":[{"message":{"role":"assistant","content":"  Green or black tea?  "}}]}"#))
        try await inbound("wamid.A1", "I want tea")
        let request = try XCTUnwrap(ai.recorded.first)
        XCTAssertEqual(request.path, "/v1/chat/completions")
        XCTAssertEqual(request.authorization, "Bearer ai-key")
        XCTAssertEqual(request.json?["model"]?.stringValue, "test-model")
        let messages = request.json?["messages"]?.arrayValue ?? []
        XCTAssertEqual(messages.first?["role"]?.stringValue, "system")
        XCTAssertEqual(messages.first?["content"]?.stringValue, "You sell tea in Cairo.")
        XCTAssertEqual(messages.last?["role"]?.stringValue, "user")
        XCTAssertEqual(messages.last?["content"]?.stringValue, "I want tea")
        XCTAssertEqual(sentTexts(), ["Green or black tea?"])
    }

    func testAIFailureRetriesAndSendsNothing() async throws {
        try await h.app.database.write { try $0.run("UPDATE workflows SET ai_enabled = 1") }
        try await addStep("ai_reply", position: 1, config: "{}")
        try await addStep("auto_reply", position: 2, config: #"{"text":"We got your message."}"#)
        ai.answerNext(.init(status: .internalServerError, body: "overloaded"),
                      .init(status: .ok, body: #"{"choices":[{"message":{"content":""}}]}"#))
        try await inbound("wamid.A2", "hello?")
        XCTAssertEqual(sentTexts(), ["We got your message."], "the other step still ran; no AI text was sent")
        let job = try await h.app.database.read { try $0.queryOne("SELECT status FROM message_jobs WHERE type = 'workflow.inbound'") { $0.string(0) } ?? nil }
        XCTAssertEqual(job, "failed", "retried later")
    }

    func testHandoffStopsAutomatedReplies() async throws {
        try await addStep("handoff", position: 1, config: #"{"keywords":["agent","human"]}"#)
        try await addStep("auto_reply", position: 2, config: #"{"text":"Automated answer."}"#)
        try await inbound("wamid.H1", "I want a human")
        XCTAssertEqual(sentTexts(), [])
        let handoff = try await h.app.database.read { try $0.scalarInt("SELECT handoff FROM conversations") }
        XCTAssertEqual(handoff, 1)
        try await inbound("wamid.H2", "anyone?")
        XCTAssertEqual(sentTexts(), [], "no automated reply while a human has the conversation")
    }

    func testBusinessHoursDecideWhichAutoReplyRuns() async throws {
        let hour = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date()).hour ?? 0
        let start = String(format: "%02d:00", (hour + 2) % 24), end = String(format: "%02d:00", (hour + 3) % 24)
        let hours = #""timezone":"UTC","start":"\#(start)","end":"\#(end)""#
        try await addStep("auto_reply", position: 1, config: #"{"text":"We are open, an agent will answer.","business_hours":{\#(hours),"when":"inside"}}"#)
        try await addStep("auto_reply", position: 2, config: #"{"text":"We are closed; we open at \#(start) UTC.","business_hours":{\#(hours),"when":"outside"}}"#)
        try await addStep("auto_reply", position: 3, config: #"{"text":"never","business_hours":{"timezone":"Mars/Base","start":"00:00","end":"24:00"}}"#)
        try await inbound("wamid.BH1", "hello?")
        XCTAssertEqual(sentTexts(), ["We are closed; we open at \(start) UTC."], "a malformed condition never matches")
    }

    /// Step patterns are compiled once and kept: the same answers on every call, in any case, after the cache
    /// has been emptied for being full, and for a pattern that does not compile (never a match).
    func testStepPatternsMatchTheSameWhenCached() throws {
        func config(_ pattern: String) -> JSONValue { .object([("pattern", .string(pattern))]) }
        let order = config(#"order\s+#?\d{4,}"#)
        for _ in 0..<3 {
            XCTAssertTrue(WorkflowRunner.matches(order, "Where is ORDER #12345?"))
            XCTAssertFalse(WorkflowRunner.matches(order, "order 12"))
            XCTAssertFalse(WorkflowRunner.matches(order, nil))
        }
        let broken = config("(unclosed")
        XCTAssertFalse(WorkflowRunner.matches(broken, "(unclosed"))
        XCTAssertFalse(WorkflowRunner.matches(broken, "(unclosed"), "a pattern that failed to compile stays a non-match")
        // More distinct patterns than the cache keeps: each still answers for itself.
        for i in 0..<(WorkflowRunner.maxCachedPatterns + 10) {
            let numbered = config("^code-\(i)$")
            XCTAssertTrue(WorkflowRunner.matches(numbered, "CODE-\(i)"), "pattern \(i)")
            XCTAssertFalse(WorkflowRunner.matches(numbered, "code-\(i + 1)"), "pattern \(i)")
        }
        XCTAssertTrue(WorkflowRunner.matches(order, "order 2026"), "an evicted pattern is compiled again")
    }

    func testBusinessHoursCalendar() throws {
        let cfg = try JSONValue.parse(Array(#"{"timezone":"Africa/Cairo","days":["sun","mon","tue","wed","thu"],"start":"09:00","end":"17:00"}"#.utf8))
        let f = ISO8601DateFormatter()
        // 2026-11-26 is a Thursday; Cairo is UTC+2 in November.
        XCTAssertTrue(BusinessHours.matches(cfg, at: f.date(from: "2026-11-26T07:30:00Z")!), "09:30 Thursday in Cairo")
        XCTAssertFalse(BusinessHours.matches(cfg, at: f.date(from: "2026-11-26T06:30:00Z")!), "08:30: not yet")
        XCTAssertFalse(BusinessHours.matches(cfg, at: f.date(from: "2026-11-27T10:00:00Z")!), "Friday: closed")
        let night = try JSONValue.parse(Array(#"{"timezone":"UTC","days":["mon"],"start":"22:00","end":"02:00"}"#.utf8))
        XCTAssertTrue(BusinessHours.matches(night, at: f.date(from: "2026-11-24T01:00:00Z")!), "Tuesday 01:00 belongs to Monday's night")
        XCTAssertFalse(BusinessHours.matches(night, at: f.date(from: "2026-11-25T01:00:00Z")!), "Wednesday 01:00 does not")
        XCTAssertNotNil(BusinessHours.problem(try JSONValue.parse(Array(#"{"timezone":"UTC","start":"9","end":"17:00"}"#.utf8))))
    }

    func testWebhookStepAndHandoffEmitWorkflowEventsOnce() async throws {
        let receiver = try FakeReceiver()
        await h.stop()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": graph.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_WORKER": "off",
                                  "OUTBOUND_ALLOWLIST": "127.0.0.1"])
        XCTAssertEqual(try h.post(Meta.envelope(messages: [])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await WebhookEndpoints(database: h.app.database, guardrail: try OutboundGuard(allowlist: ["127.0.0.1"]))
            .create(projectID: h.app.defaults.projectID, phoneNumberID: Meta.phoneNumberID, url: receiver.url,
                    events: ["workflow.execution.webhook", "workflow.execution.handoff"], secret: nil, headers: nil)
        try await addStep("webhook", position: 1, config: #"{"keywords":["order"],"payload":{"erp_action":"lookup"}}"#)
        try await addStep("handoff", position: 2, config: #"{"keywords":["human"]}"#)
        try await inbound("wamid.WH1", "my order, I want a human")
        try await h.app.database.write { try $0.run("UPDATE message_jobs SET status = 'pending', run_at = 0 WHERE type = 'workflow.inbound'") }
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)  // the job again: no second event
        _ = try await h.app.bridge.runDue()
        _ = try await h.app.bridge.runDue()  // one in flight per conversation: the second follows the first
        let events = receiver.deliveries.map { $0.header("x-webhook-event") ?? "" }
        XCTAssertEqual(events.sorted(), ["workflow.execution.handoff", "workflow.execution.webhook"])
        let hook = try XCTUnwrap(receiver.deliveries.first { $0.header("x-webhook-event") == "workflow.execution.webhook" }?.json)
        XCTAssertEqual(hook["payload"]?["erp_action"]?.stringValue, "lookup")
        XCTAssertEqual(hook["message"]?["id"]?.stringValue, "wamid.WH1")
        await receiver.stop()
    }
}
