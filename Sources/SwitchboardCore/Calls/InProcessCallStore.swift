import Synchronization

/// The ``CallStore`` of a single node: a ``CallBook`` under a lock, answering at once on the caller's thread.
///
/// Presence is the node's own: `whereIs` answers the node of a user's session (`nil`: online nowhere). It
/// is called with the store's lock held, so it must not call back into the store.
package final class InProcessCallStore: CallStore {
    private let book = Mutex(CallBook())
    private let whereIs: @Sendable (String) -> String?

    /// A store with no calls, whose presence is `whereIs`.
    package init(whereIs: @escaping @Sendable (String) -> String?) {
        self.whereIs = whereIs
    }

    /// The number of calls ringing or active.
    package var count: Int { book.withLock { $0.count } }

    /// Every call in the store.
    package var allCalls: [Call] { book.withLock { $0.allCalls } }

    /// The call with this id.
    package func call(id: String) -> Call? { book.withLock { $0.call(id: id) } }

    /// The call `user` is in.
    package func call(of user: String) -> Call? { book.withLock { $0.call(of: user) } }

    /// The call of `sender`'s with `recipient` that a negotiation signal names (`callId`, or the one
    /// `sender` is in), changing nothing and asking no presence.
    package func find(from sender: String, to recipient: String, callId: String?) -> Result<Call, NoCall> {
        book.withLock { $0.find(from: sender, to: recipient, callId: callId) }
    }

    /// Keeps `call` as another store decided it (a cache of the cluster's calls), replacing the calls its
    /// parties were in before.
    package func cache(_ call: Call) {
        book.withLock { $0.restore(call) }
    }

    /// Forgets the call with this id (it ended); returns it if it was known.
    @discardableResult
    package func forget(callId: String) -> Call? {
        book.withLock { $0.remove(callId: callId) }
    }

    /// Forgets the call with this id if it is still ringing (it was answered or ended elsewhere).
    package func forgetIfRinging(callId: String) {
        book.withLock { book in
            if book.call(id: callId)?.state == .ringing { book.remove(callId: callId) }
        }
    }

    package func invite(_ call: Call, then done: @escaping @Sendable (CallStoreResult<InviteOutcome>) -> Void) {
        done(.success(invite(call)))
    }

    /// ``invite(_:then:)``, answered directly.
    package func invite(_ call: Call) -> InviteOutcome {
        book.withLock { book in
            if call.caller == call.callee { return .forbidden }
            let idIsLive = book.call(id: call.id) != nil
            guard let calleeNode = whereIs(call.callee) else { return .offline(idIsLive: idIsLive) }
            switch book.invite(
                callId: call.id,
                caller: call.caller,
                callee: call.callee,
                callType: call.callType,
                now: call.createdAt
            ) {
            case .success(let ringing): return .ringing(ringing, calleeNode: calleeNode)
            case .failure(.busy): return .busy(idIsLive: idIsLive)
            case .failure(.glare(let standing)): return .glare(standing)
            case .failure(.forbidden): return .forbidden
            case .failure(.duplicateCallID): return .duplicate
            }
        }
    }

    package func apply(
        _ operation: CallOperation,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64,
        then done: @escaping @Sendable (CallStoreResult<TransitionOutcome>) -> Void
    ) {
        done(.success(apply(operation, from: sender, to: recipient, callId: callId, now: now)))
    }

    /// ``apply(_:from:to:callId:now:then:)``, answered directly.
    package func apply(
        _ operation: CallOperation,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64
    )
        -> TransitionOutcome
    {
        book.withLock { book in
            switch book.apply(operation.signalType, from: sender, to: recipient, callId: callId, now: now) {
            case .failure(let noCall):
                return .noCall(message: noCall.message)
            case .success(.accepted(let call)):
                return .accepted(call, peerNode: whereIs(recipient))
            case .success(.ended(let call, let status)):
                return .ended(call, status: status, peerNode: whereIs(recipient))
            case .success(.relayed(let call)):
                return .found(call, peerNode: whereIs(recipient))
            case .success(.connected(let call, let first)):
                return .connected(call, first: first)
            }
        }
    }

    package func expire(callId: String, now: Int64, then done: @escaping @Sendable (CallStoreResult<Call?>) -> Void) {
        done(.success(expire(callId: callId)))
    }

    /// ``expire(callId:now:then:)``, answered directly.
    package func expire(callId: String) -> Call? {
        book.withLock { $0.expireRinging(callId: callId) }
    }

    package func abandon(_ user: String, now: Int64, then done: @escaping @Sendable (CallStoreResult<PartedCall?>) -> Void) {
        done(.success(abandon(user)))
    }

    /// ``abandon(_:now:then:)``, answered directly.
    package func abandon(_ user: String) -> PartedCall? {
        book.withLock { book in
            guard whereIs(user) == nil, let call = book.abandon(by: user) else { return nil }
            return PartedCall(call: call, peerNode: whereIs(call.peer(of: user)))
        }
    }

    package func restore(_ call: Call, now: Int64, then done: @escaping @Sendable (CallStoreResult<Bool>) -> Void) {
        done(.success(book.withLock { $0.insert(call) }))
    }
}

extension CallOperation {
    /// The call signal that asks for this operation (a negotiation signal for `lookup`).
    var signalType: SignalType {
        switch self {
        case .accept: .callAccept
        case .reject: .callReject
        case .hangup: .callHangup
        case .connect: .callConnected
        case .lookup: .offer
        }
    }
}
