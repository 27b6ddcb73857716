import Actors
import Store

/// The job handlers this build has, by job type. A job whose type has no handler yet (`workflow.inbound`,
/// `media.download`: their features come next) waits, pending, for a build that handles it.
enum JobHandlers {
    static func all(config: Config, database: Database, graph: GraphClient) -> [String: JobHandler] {
        [
            "message.send": OutboundSender(database: database, graph: graph, token: config.whatsappAccessToken).jobHandler,
        ]
    }
}
