import Support

/// The rows a fresh install needs to route messages without configuration: a default project and its default
/// workflow. Numbers need no seed row: a number may exist without a WABA, and unknown numbers are registered
/// under the default project when they first post (the ingest issue).
public enum Seed {
    public struct Defaults: Sendable, Equatable {
        public let projectID: String
        public let workflowID: String
    }

    /// The ids a fresh install gives its defaults: the same on every install, so that several instances sharing
    /// one Supabase project share one default project (docs/scaling.md). Installs seeded before keep their ids.
    public static let defaultProjectID = "00000000-0000-8000-8000-000000000001"
    public static let defaultWorkflowID = "00000000-0000-8000-8000-000000000002"

    /// Creates the defaults when missing; returns their ids either way. Idempotent.
    public static func ensureDefaults(_ conn: SQLiteConnection) throws -> Defaults {
        let now = WallClock.nowMillis()
        var projectID = try conn.queryOne("SELECT id FROM projects WHERE is_default = 1") { $0.string(0) } ?? nil
        if projectID == nil {
            let id = defaultProjectID
            try conn.run("""
                INSERT INTO projects (id, name, slug, is_default, created_at, updated_at)
                VALUES (?, 'Default project', 'default', 1, ?, ?)
                """, [id, now, now])
            projectID = id
        }
        guard let project = projectID else { throw StoreError(kind: .other, message: "default project missing") }
        var workflowID = try conn.queryOne("SELECT id FROM workflows WHERE project_id = ? AND is_default = 1",
                                           [project]) { $0.string(0) } ?? nil
        if workflowID == nil {
            let id = defaultWorkflowID
            try conn.run("""
                INSERT INTO workflows (id, project_id, name, is_default, is_active, ai_enabled, created_at, updated_at)
                VALUES (?, ?, 'Default workflow', 1, 1, 0, ?, ?)
                """, [id, project, now, now])
            workflowID = id
        }
        guard let workflow = workflowID else { throw StoreError(kind: .other, message: "default workflow missing") }
        return Defaults(projectID: project, workflowID: workflow)
    }
}
