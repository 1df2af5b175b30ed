/// Why a token was refused at the upgrade (answered with HTTP 401, PROTOCOL.md §2).
package struct AuthenticationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of failure.
    package enum Reason: String, Sendable, Equatable {
        /// No token was presented.
        case missing
        /// The token is not a well-formed HS256 JWT (segments, base64url, JSON, algorithm, size).
        case malformed
        /// The signature does not match the node's secret.
        case badSignature
        /// `exp` is at or before the current time.
        case expired
        /// `nbf` is after the current time.
        case notYetValid
        /// A claim is missing or has the wrong type or form (`sub`, `exp`, `nbf`, `name`, `avatar`).
        case invalidClaims
    }

    /// The class of failure.
    package let reason: Reason
    /// A human-readable explanation, safe to send to the client (it never contains the secret).
    package let message: String

    /// Creates an error.
    package init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// "`reason`: `message`".
    package var description: String { "\(reason.rawValue): \(message)" }
}
