/// The `reason` of an `error` notice (PROTOCOL.md §4).
package enum ErrorReason: String, Sendable, CaseIterable {
    case invalidMessage = "invalid-message"
    case invalidSignal = "invalid-signal"
    case unknownSignal = "unknown-signal"
    case noCall = "no-call"
    case offline
    case unsupported
    case rateLimited = "rate-limited"
    /// The message needed another node and the cluster backend (Redis) could not carry it.
    case unavailable
    /// The recipient blocked the sender (PROTOCOL.md §10).
    case forbidden
}

/// The `reason` of a `call-failed` notice.
package enum CallFailureReason: String, Sendable, CaseIterable {
    case offline
    case busy
    case forbidden
    case rateLimited = "rate-limited"
    case unavailable
    /// The callee's invite to the caller rings already (PROTOCOL.md §8): accept that one.
    case glare

    /// The message sent with the notice; `offline` keeps the seed's text.
    package var message: String {
        switch self {
        case .offline: "用户离线"
        case .busy: "user is in another call"
        case .forbidden: "this call is not allowed"
        case .rateLimited: "too many call invites; try again later"
        case .unavailable: "the cluster backend is unreachable; try again"
        case .glare: "the user is calling you already; accept that call"
        }
    }
}

/// The `reason` of a `call-hangup` sent by the server.
package enum HangupReason: String, Sendable, CaseIterable {
    case timeout
    case peerDisconnected = "peer-disconnected"
}
