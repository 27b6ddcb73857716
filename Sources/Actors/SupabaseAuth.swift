import Store
import Support

/// `AUTH_PROVIDER=supabase`: the sign-in form's email and password are checked by Supabase Auth
/// (`POST /auth/v1/token?grant_type=password`); Wasla then keeps its own cookie session as for local users.
public struct SupabaseAuth: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Supabase accepted the password; `role` is the user's `app_metadata.role` when it names a Wasla role.
        case accepted(email: String, role: Users.Role?)
        /// Supabase answered that the credentials are wrong.
        case rejected
        /// No usable answer (down, misconfigured): local users stay available.
        case unavailable(String)
    }

    /// Marks a local row that exists only to hold a Supabase user's role and sessions: never a valid hash.
    public static let externalPasswordHash = "!supabase"

    let client: SupabaseClient

    public init(client: SupabaseClient) { self.client = client }

    public func signIn(email: String, password: String) async -> Verdict {
        let body = JSONValue.object([("email", .string(email)), ("password", .string(password))]).encoded
        // Sign-in is what the anon key is for; the service-role key works too when no anon key is configured.
        let answer = await client.call("POST", "/auth/v1/token?grant_type=password", body: body,
                                       key: client.configuration.anonKey ?? client.configuration.serviceRoleKey)
        if answer.isSuccess {
            guard let json = try? JSONValue.parse(answer.body), let user = json["user"],
                  let confirmed = user["email"]?.stringValue else { return .unavailable("Supabase Auth answered without a user") }
            return .accepted(email: confirmed, role: user["app_metadata"]?["role"]?.stringValue.flatMap(Users.Role.init(rawValue:)))
        }
        if answer.failure == nil, answer.status == 400 || answer.status == 422 { return .rejected }
        return .unavailable(answer.reason)
    }
}
