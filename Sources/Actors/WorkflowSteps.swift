import FoundationEssentials
import Support

/// Validation of a workflow step's JSON `config`, by type, before it is saved: a step that could never run
/// (no text, a regular expression that does not compile, a malformed business-hours condition) is refused with
/// the field and the reason.
public enum WorkflowSteps {
    public static let types = ["auto_reply", "ai_reply", "handoff", "forward", "webhook"]

    /// Why `config` is not valid for `type`, or nil.
    public static func problem(type: String, config: JSONValue) -> String? {
        guard types.contains(type) else { return "type must be one of \(types.joined(separator: ", "))" }
        guard case .object = config else { return "config must be a JSON object" }
        if let keywords = config["keywords"] {
            guard let list = keywords.arrayValue, list.count <= 100,
                  list.allSatisfy({ ($0.stringValue?.isEmpty == false) }) else {
                return "config.keywords must be a list of up to 100 non-empty strings"
            }
        }
        if let pattern = config["pattern"] {
            guard let p = pattern.stringValue, p.utf8.count <= 1000 else {
                return "config.pattern must be a string of at most 1000 bytes"
            }
            if let why = patternProblem(p) { return "config.pattern must be a valid regular expression: \(why)" }
        }
        switch type {
        case "auto_reply":
            guard let text = config["text"]?.stringValue, !text.isEmpty, text.utf8.count <= 4096 else {
                return "config.text (1 to 4096 bytes) is required for auto_reply"
            }
            if let hours = config["business_hours"], let why = BusinessHours.problem(hours) { return "config.\(why)" }
        case "ai_reply":
            if let prompt = config["system_prompt"], prompt.stringValue == nil || (prompt.stringValue?.utf8.count ?? 0) > 8000 {
                return "config.system_prompt must be a string of at most 8000 bytes"
            }
        case "forward":
            guard let target = config["integration"]?.stringValue, !target.isEmpty else {
                return "config.integration (erp, crm, helpdesk, custom or an integration id) is required for forward"
            }
        default:
            break
        }
        return nil
    }

    /// A step's pattern compiled as steps match it: anywhere in the text, in any case (`TextPattern`'s syntax).
    public static func compilePattern(_ pattern: String) throws(TextPattern.SyntaxError) -> TextPattern {
        try TextPattern(pattern, ignoringCase: true)
    }

    /// Why a step's pattern does not compile, or nil.
    public static func patternProblem(_ pattern: String) -> String? {
        do {
            _ = try compilePattern(pattern)
            return nil
        } catch {
            return error.description
        }
    }
}
