import Actors
import Store

/// The job handlers this build has, by job type, and the sender they share with the API. A job whose type
/// has no handler waits, pending, for a build that handles it.
enum JobHandlers {
    struct Parts {
        let handlers: [String: JobHandler]
        let sender: OutboundSender
        let media: MediaStore
    }

    static func build(config: Config, database: Database, graph: GraphClient, secrets: SecretBox?) -> Parts {
        let pacer = SendPacer(perNumberPerSecond: Double(config.sendRatePerNumber),
                              perRecipientIntervalMillis: Int64(config.sendRecipientIntervalMillis))
        let sender = OutboundSender(database: database, graph: graph, token: config.whatsappAccessToken,
                                    secrets: secrets, pacer: pacer)
        let media = MediaStore(database: database, graph: graph, directory: config.dataDirectory + "/media",
                               maxBytes: config.mediaMaxBytes, installToken: config.whatsappAccessToken, secrets: secrets)
        let ai = config.aiURL.map { AIClient(baseURL: $0, apiKey: config.aiKey, model: config.aiModel ?? "") }
        var handlers: [String: JobHandler] = [
            "message.send": sender.jobHandler,
            "workflow.inbound": WorkflowRunner(database: database, ai: ai).jobHandler,
            "media.download": media.jobHandler,
        ]
        if config.supabaseSyncEnabled, let supabase = config.supabase {
            handlers[SupabaseStorage.jobType] = SupabaseStorage(database: database, client: SupabaseClient(configuration: supabase),
                                                                mediaDirectory: config.dataDirectory + "/media").jobHandler
        }
        return Parts(handlers: handlers, sender: sender, media: media)
    }
}
