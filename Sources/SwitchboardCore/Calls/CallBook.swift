/// Every call in progress and who is in which: the call state machine (PROTOCOL.md §3, "Call semantics").
///
/// A pure value type: each method validates a transition, applies it and says what happened; the caller
/// performs the effects (relays, notices, records, timers). A user is in at most one call at a time.
package struct CallBook: Sendable {
    private var calls: [String: Call] = [:]
    private var callOfUser: [String: String] = [:]

    package init() {}

    /// The number of calls ringing or active.
    package var count: Int { calls.count }

    /// The call with this id.
    package func call(id: String) -> Call? { calls[id] }

    /// The call `user` is in, if any.
    package func call(of user: String) -> Call? { callOfUser[user].flatMap { calls[$0] } }

    /// Starts ringing a new call, unless one of the parties is busy or the caller calls themself.
    package mutating func invite(
        callId: String,
        caller: String,
        callee: String,
        callType: CallType,
        now: Int64
    ) -> Result<Call, InviteRefusal> {
        if caller == callee { return .failure(.forbidden) }
        // Re-sending your own invite is a duplicate; anyone else meeting a live call is told "busy".
        if calls[callId]?.involves(caller) == true { return .failure(.duplicateCallID) }
        if let standing = ringingInvite(from: callee, to: caller) { return .failure(.glare(standing)) }
        if callOfUser[caller] != nil || callOfUser[callee] != nil { return .failure(.busy) }
        if calls[callId] != nil { return .failure(.duplicateCallID) }
        let call = Call(id: callId, caller: caller, callee: callee, callType: callType, createdAt: now)
        calls[callId] = call
        callOfUser[caller] = callId
        callOfUser[callee] = callId
        return .success(call)
    }

    /// The call `caller` rings `callee` with, if it is still ringing: an invite the other way meets it
    /// (glare, PROTOCOL.md §8).
    private func ringingInvite(from caller: String, to callee: String) -> Call? {
        guard let call = call(of: caller), call.state == .ringing, call.caller == caller, call.callee == callee else {
            return nil
        }
        return call
    }

    /// The call of `sender`'s with `recipient` that a signal names (`callId`, or the one `sender` is in).
    package func find(from sender: String, to recipient: String, callId: String?) -> Result<Call, NoCall> {
        guard let id = callId ?? callOfUser[sender], let call = calls[id],
            call.involves(sender), call.peer(of: sender) == recipient, sender != recipient
        else {
            return .failure(NoCall(message: callId == nil ? "no call with \(recipient)" : "no such call for you"))
        }
        return .success(call)
    }

    /// Applies a signal other than `call-invite` from `sender` to `recipient`, naming `callId` or not.
    package mutating func apply(
        _ type: SignalType,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64
    ) -> Result<CallTransition, NoCall> {
        let found = find(from: sender, to: recipient, callId: callId)
        guard case .success(var call) = found else { return found.map(CallTransition.relayed) }
        let id = call.id
        switch type {
        case .callAccept:
            guard call.state == .ringing, sender == call.callee else {
                return .failure(NoCall(message: "no ringing call for you to accept"))
            }
            call.state = .active
            // Clocks of nodes differ a little: a call starts no earlier than it was created.
            call.startedAt = max(now, call.createdAt)
            calls[id] = call
            return .success(.accepted(call))
        case .callReject:
            guard call.state == .ringing, sender == call.callee else {
                return .failure(NoCall(message: "no ringing call for you to reject"))
            }
            end(id)
            return .success(.ended(call, status: .rejected))
        case .callHangup:
            end(id)
            return .success(.ended(call, status: .hungUp))
        case .callConnected:
            guard call.state == .active else { return .failure(NoCall(message: "no active call of yours")) }
            guard call.connectedAt == nil else { return .success(.connected(call, first: false)) }
            // Clocks of nodes differ a little: a call connects no earlier than it started.
            call.connectedAt = max(now, call.startedAt ?? now)
            calls[id] = call
            return .success(.connected(call, first: true))
        case .offer, .answer, .iceCandidate:
            return .success(.relayed(call))
        case .callInvite:
            return .failure(NoCall(message: "call-invite starts a call; it does not apply to one"))
        }
    }

    /// Ends a call that is still ringing (ring timeout); `nil` if it was answered or ended meanwhile.
    package mutating func expireRinging(callId: String) -> Call? {
        guard let call = calls[callId], call.state == .ringing else { return nil }
        end(callId)
        return call
    }

    /// Ends the call `user` is in because they left (reconnect grace ran out); `nil` if there is none.
    package mutating func abandon(by user: String) -> Call? {
        guard let id = callOfUser[user], let call = calls[id] else { return nil }
        end(id)
        return call
    }

    /// Records `call` as it is known elsewhere (a cluster's shared state), replacing the calls its
    /// parties were in before.
    package mutating func restore(_ call: Call) {
        for party in [call.caller, call.callee] {
            if let other = callOfUser[party], other != call.id { end(other) }
        }
        calls[call.id] = call
        callOfUser[call.caller] = call.id
        callOfUser[call.callee] = call.id
    }

    /// Adds `call` as it stands, unless its id is taken or a party is in another call; says whether it did.
    package mutating func insert(_ call: Call) -> Bool {
        guard calls[call.id] == nil, callOfUser[call.caller] == nil, callOfUser[call.callee] == nil,
            call.caller != call.callee
        else { return false }
        restore(call)
        return true
    }

    /// Forgets the call with this id (it ended elsewhere); returns it if it was known.
    @discardableResult
    package mutating func remove(callId: String) -> Call? {
        let call = calls[callId]
        end(callId)
        return call
    }

    /// Every call in the book.
    package var allCalls: [Call] { Array(calls.values) }

    private mutating func end(_ id: String) {
        guard let call = calls.removeValue(forKey: id) else { return }
        callOfUser[call.caller] = nil
        callOfUser[call.callee] = nil
    }
}

/// What a valid signal did to its call.
package enum CallTransition: Sendable, Equatable {
    /// The callee accepted: the call is active.
    case accepted(Call)
    /// The call ended with this status (`rejected` or `hungUp`).
    case ended(Call, status: CallStatus)
    /// Negotiation inside the call: relay it, nothing changes.
    case relayed(Call)
    /// `call-connected` in an active call; `first`: it set `connectedAt`.
    case connected(Call, first: Bool)
}

/// Why an invite did not start a call.
package enum InviteRefusal: Error, Sendable, Equatable {
    case busy
    /// The callee's invite to the caller rings: this call, which stands.
    case glare(Call)
    case forbidden
    case duplicateCallID
}

/// A signal that matches no call of its sender's.
package struct NoCall: Error, Sendable, Equatable {
    package let message: String
}

extension CallTransition {
    /// The call the transition applied to.
    package var call: Call {
        switch self {
        case .accepted(let call), .ended(let call, _), .relayed(let call), .connected(let call, _): call
        }
    }
}
