import Hummingbird
import SwitchboardAuth
import SwitchboardCore

extension Router where Context == BasicRequestContext {
    /// A user's own block list (PROTOCOL.md §10), JWT auth: `PUT` and `DELETE /api/blocks/{user}` (204,
    /// idempotent; 400 for oneself or an invalid id, 409 when the list is full), `GET /api/blocks` →
    /// `{"blocks":[user ids]}`. A change holds cluster-wide once it has answered.
    func addBlockRoutes(_ blocks: any BlockList, authenticator: JWTAuthenticator) {
        @Sendable func parties(_ request: Request, _ context: Context) throws -> (owner: String, user: String) {
            let owner = try authenticator.authenticate(request).id
            let user = try context.parameters.require("user")
            guard UserIdentity.isValidUserID(user) else {
                throw HTTPError(.badRequest, message: "not a user id: 1-64 characters of A-Z a-z 0-9 . _ @ -")
            }
            guard user != owner else { throw HTTPError(.badRequest, message: "a user cannot block themself") }
            return (owner, user)
        }
        put("api/blocks/:user") { request, context in
            let (owner, user) = try parties(request, context)
            guard
                try await Self.available({ () async throws(BlockListUnavailable) in try await blocks.block(user, by: owner) })
                    == .blocked
            else {
                throw HTTPError(.conflict, message: "the block list is full (blocks.max_per_user); unblock someone first")
            }
            return Response(status: .noContent)
        }
        delete("api/blocks/:user") { request, context in
            let (owner, user) = try parties(request, context)
            try await Self.available({ () async throws(BlockListUnavailable) in try await blocks.unblock(user, by: owner) })
            return Response(status: .noContent)
        }
        get("api/blocks") { request, _ in
            let owner = try authenticator.authenticate(request).id
            let users = try await Self.available({ () async throws(BlockListUnavailable) in try await blocks.blocked(by: owner) })
            return Response.json(["blocks": .array(users.map(JSONValue.string))])
        }
    }

    /// What `body` answers, or HTTP 503 when the block list cannot be asked.
    @discardableResult
    private static func available<T>(_ body: () async throws(BlockListUnavailable) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw HTTPError(.serviceUnavailable, message: "block list unavailable: Redis unreachable")
        }
    }
}
