/// Why a request was refused by the parser: the status to answer and a reason for the body and the log.
/// Every parser error closes the connection afterwards (hardening.md §2).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let reason: String

    public init(_ status: HTTPStatus, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status.code): \(reason)" }
}
