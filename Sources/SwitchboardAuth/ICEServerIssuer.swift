import Crypto
import SwitchboardCore

/// Issues the `ice-servers` a client gets (PROTOCOL.md §8): one STUN entry, one TURN entry, and for TURN
/// coturn's REST credentials (`use-auth-secret` / `static-auth-secret`).
///
/// The credentials are stateless: username `"<unix expiry seconds>:<user id>"`, credential
/// base64(HMAC-SHA1(secret, username)). coturn recomputes the credential from its own copy of the secret
/// and refuses it once the expiry has passed; nothing is stored on either side.
package struct ICEServerIssuer: Sendable {
    private let stunURLs: [String]
    private let turnURLs: [String]
    private let key: SymmetricKey?
    private let ttlSeconds: Int64

    /// `secret` `nil`: the TURN entry (if any) carries no credentials. `ttl` is rounded down to seconds.
    package init(stunURLs: [String], turnURLs: [String], secret: String?, ttl: Duration) {
        self.stunURLs = stunURLs
        self.turnURLs = turnURLs
        self.key = secret.map { SymmetricKey(data: Array($0.utf8)) }
        self.ttlSeconds = ttl.components.seconds
    }

    /// The servers for `user` at `now` (unix seconds): credentials that expire at `now` + the TTL.
    package func servers(for user: String, now: Int64) -> ICEServers {
        var servers: [ICEServers.Server] = []
        if !stunURLs.isEmpty { servers.append(.init(urls: stunURLs)) }
        if !turnURLs.isEmpty {
            if let key {
                let username = "\(now + ttlSeconds):\(user)"
                servers.append(.init(urls: turnURLs, username: username, credential: Self.credential(for: username, key: key)))
            } else {
                servers.append(.init(urls: turnURLs))
            }
        }
        return ICEServers(servers: servers, ttl: ttlSeconds)
    }

    /// coturn's REST credential for `username`: base64(HMAC-SHA1(secret, username)).
    package static func credential(for username: String, secret: String) -> String {
        credential(for: username, key: SymmetricKey(data: Array(secret.utf8)))
    }

    private static func credential(for username: String, key: SymmetricKey) -> String {
        let code = HMAC<Insecure.SHA1>.authenticationCode(for: Array(username.utf8), using: key)
        // Standard base64 with padding (what coturn compares against): base64url's alphabet, two letters apart.
        let url = Base64URL.encode(Array(code))
        let standard = String(url.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        return standard + String(repeating: "=", count: (4 - url.utf8.count % 4) % 4)
    }
}
