import Actors

/// The job handlers this build has, by job type. Empty until the features that run jobs land (sending and
/// workflows, media download, integrations): jobs of other types wait, pending, for a build that handles them.
enum JobHandlers {
    static func all(config: Config) -> [String: JobHandler] {
        [:]
    }
}
