import Actors
import Store

/// The job handlers this build has, by job type. A job whose type has no handler waits, pending, for a build
/// that handles it.
enum JobHandlers {
    static func all(config: Config, database: Database, graph: GraphClient) -> [String: JobHandler] {
        let pacer = SendPacer(perNumberPerSecond: Double(config.sendRatePerNumber),
                              perRecipientIntervalMillis: Int64(config.sendRecipientIntervalMillis))
        let secrets = config.sessionSecret.flatMap { SecretBox(sessionSecret: $0) }
        let media = MediaStore(database: database, graph: graph, directory: config.dataDirectory + "/media",
                               maxBytes: config.mediaMaxBytes, installToken: config.whatsappAccessToken, secrets: secrets)
        let ai = config.aiURL.map { AIClient(baseURL: $0, apiKey: config.aiKey, model: config.aiModel ?? "") }
        return [
            "message.send": OutboundSender(database: database, graph: graph, token: config.whatsappAccessToken,
                                           secrets: secrets,
                                           pacer: pacer).jobHandler,
            "workflow.inbound": WorkflowRunner(database: database, ai: ai).jobHandler,
            "media.download": media.jobHandler,
        ]
    }
}
