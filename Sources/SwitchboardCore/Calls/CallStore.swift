/// Where the calls of a whole deployment are decided: each transition is atomic, checked against presence
/// (who is online, and where), and answers one typed outcome (PROTOCOL.md §3).
///
/// Single node: ``InProcessCallStore``. Cluster: the Redis store (one Lua script per transition), so that
/// racing transitions on different nodes (two accepts, an accept against a hangup) have exactly one winner.
/// An answer may come at once, on the caller's thread (in-process), or later on another (Redis); it comes
/// exactly once. `.failure` means the store could not be asked (Redis unreachable): nothing changed that
/// the caller can know of.
package protocol CallStore: Sendable {
    /// Starts ringing `call` unless its callee is offline, a party is busy, the callee's invite to the
    /// caller rings (glare), or its id is taken.
    func invite(_ call: Call, then done: @escaping @Sendable (CallStoreResult<InviteOutcome>) -> Void)

    /// Applies `operation` of `sender` to their call with `recipient` (the call `callId` names, or, with
    /// `nil`, the one `sender` is in).
    func apply(
        _ operation: CallOperation,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64,
        then done: @escaping @Sendable (CallStoreResult<TransitionOutcome>) -> Void
    )

    /// Ends the call `callId` if it is still ringing (its ring timeout); answers it, or `nil`.
    func expire(callId: String, now: Int64, then done: @escaping @Sendable (CallStoreResult<Call?>) -> Void)

    /// Ends `user`'s call if `user` is online nowhere (their reconnect grace ran out); answers it and where
    /// the other party is, or `nil`.
    func abandon(_ user: String, now: Int64, then done: @escaping @Sendable (CallStoreResult<PartedCall?>) -> Void)

    /// Writes back a call the store lost (a Redis restart), unless its id or a party is taken meanwhile;
    /// answers whether it was written.
    func restore(_ call: Call, now: Int64, then done: @escaping @Sendable (CallStoreResult<Bool>) -> Void)
}

/// A store's answer, or why it could not be asked.
package typealias CallStoreResult<Outcome> = Result<Outcome, CallStoreUnavailable>

/// The store could not be asked (in cluster mode: Redis is unreachable, or answered what this node does
/// not understand).
package struct CallStoreUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}

/// What an invite did.
package enum InviteOutcome: Sendable, Equatable {
    /// The call rings; the callee's session is on `calleeNode`.
    case ringing(Call, calleeNode: String)
    /// The callee is online nowhere. `idIsLive`: a live call already has this id (its record must not be
    /// touched by the refusal).
    case offline(idIsLive: Bool)
    /// A party is in another call.
    case busy(idIsLive: Bool)
    /// The callee's invite to the caller is ringing (glare, PROTOCOL.md §8): no second call; that one,
    /// given here, stands and the caller may accept it.
    case glare(Call)
    /// The caller called themself.
    case forbidden
    /// The id names a live call: the caller's own (a re-sent invite) or someone else's.
    case duplicate
}

/// A transition of a call that exists, or a look-up of it.
package enum CallOperation: String, Sendable, CaseIterable {
    case accept
    case reject
    case hangup
    /// A party's media connection is up: the first time sets the call's `connectedAt`.
    case connect
    /// Finds the call (for negotiation signals), changing nothing.
    case lookup
}

/// What an operation did; `peerNode` is where the other party's session is (`nil` when they are online
/// nowhere: reconnecting, or gone).
package enum TransitionOutcome: Sendable, Equatable {
    /// The callee accepted: the call is active.
    case accepted(Call, peerNode: String?)
    /// The call ended with this status (`rejected` or `hungUp`).
    case ended(Call, status: CallStatus, peerNode: String?)
    /// A look-up found the call.
    case found(Call, peerNode: String?)
    /// `call-connected` in an active call; `first`: it set the call's `connectedAt` (a repeat changes
    /// nothing).
    case connected(Call, first: Bool)
    /// No call of the sender's matches; `message` says why, for the `no-call` notice.
    case noCall(message: String)
}

/// A call that ended because one party left, and where its other party is (`nil`: nowhere).
package struct PartedCall: Sendable, Equatable {
    package var call: Call
    package var peerNode: String?

    package init(call: Call, peerNode: String?) {
        self.call = call
        self.peerNode = peerNode
    }
}

extension CallOperation {
    /// The operation a call signal asks for (`nil` for `call-invite`, which starts a call).
    package init?(_ type: SignalType) {
        switch type {
        case .callAccept: self = .accept
        case .callReject: self = .reject
        case .callHangup: self = .hangup
        case .callConnected: self = .connect
        case .offer, .answer, .iceCandidate: self = .lookup
        case .callInvite: return nil
        }
    }
}
