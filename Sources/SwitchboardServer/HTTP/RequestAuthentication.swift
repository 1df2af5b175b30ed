import Hummingbird
import SwitchboardAuth
import SwitchboardCore

extension JWTAuthenticator {
    /// The user a request's `Authorization: Bearer` header (or `?token=`) proves, or HTTP 401.
    func authenticate(_ request: Request) throws -> UserIdentity {
        guard
            let (token, _) = BearerToken.extract(
                query: request.uri.query,
                authorization: request.headers[.authorization],
                webSocketProtocols: nil
            )
        else {
            throw HTTPError(.unauthorized, message: "missing bearer token")
        }
        do {
            return try authenticate(token: token, now: SwitchboardClock.system.nowMilliseconds() / 1000)
        } catch {
            throw HTTPError(.unauthorized, message: error.message)
        }
    }
}
