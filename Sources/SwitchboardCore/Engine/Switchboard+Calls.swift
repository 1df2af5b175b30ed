import SwitchboardProto

/// The call signals (PROTOCOL.md §3): invite, accept, reject and hangup are decided by the call store;
/// offers, answers and ICE candidates are checked against the local copy of the call and relayed.
extension Switchboard {
    /// The store that decides transitions: the cluster's, or the local one on a single node.
    var calls: any CallStore { cluster?.calls ?? local }

    /// Handles a signal of `session`: `false` when it waits for an answer (the session is held).
    func handle(_ signal: Signal, in message: ChatMessage, from session: Session, now: Int64) -> Bool {
        // In cluster mode the session queue checked it; negotiation is checked where it is relayed.
        if cluster == nil, !signal.type.isNegotiation, !state.withLock({ $0.isCurrent(session) }) {
            return true  // a replaced session's last messages are not acted on
        }
        guard let operation = CallOperation(signal.type) else {
            return invite(signal, in: message, from: session, now: now)
        }
        if operation == .lookup {
            return negotiate(signal, in: message, from: session, now: now)
        }
        return transition(operation, signal, in: message, from: session, now: now)
    }

    /// Whether `user`'s session is on this node.
    func isLocal(_ user: String) -> Bool {
        state.withLock { $0.sessions[user] != nil }
    }

    // MARK: Invite

    private func invite(_ signal: Signal, in message: ChatMessage, from session: Session, now: Int64) -> Bool {
        let call = Call(
            id: signal.callId ?? CallID.generate(),
            caller: session.user,
            callee: message.to,
            callType: signal.callType,
            createdAt: now
        )
        let allowed = state.withLock { state -> Bool in
            let monotonic = clock.monotonicNanoseconds()
            var bucket =
                state.inviteBuckets[call.caller]
                ?? TokenBucket(capacity: settings.invitesPerMinute, per: .seconds(60), now: monotonic)
            defer { state.inviteBuckets[call.caller] = bucket }
            return bucket.take(now: monotonic)
        }
        guard allowed else {
            failed(call, signal: signal, reason: .rateLimited, session: session, idIsLive: local.call(id: call.id) != nil)
            return true
        }
        // PROTOCOL.md §10's order: the callee's block list, then the store, then the permission hook.
        let refuse: @Sendable () -> Void = { [self] in
            failed(call, signal: signal, reason: .forbidden, session: session, idIsLive: false)
        }
        return unlessBlocked(call.callee, from: session, refuse: refuse) { [self] in
            place(call, signal: signal, message: message, session: session)
        }
    }

    /// Offers `call` to the store: `false` when it waits for an answer.
    private func place(_ call: Call, signal: Signal, message: ChatMessage, session: Session) -> Bool {
        guard cluster != nil else {
            return invited(call, local.invite(call), signal: signal, message: message, session: session)
        }
        hold(session)
        let answer = pending.begin()
        calls.invite(call) { [self] result in
            defer { answer.end() }
            let done: Bool
            switch result {
            case .success(let outcome):
                done = invited(call, outcome, signal: signal, message: message, session: session)
            case .failure:
                // The cluster is unreachable: a call between two users of this node rings locally.
                if isLocal(call.callee) {
                    done = invited(call, local.invite(call), signal: signal, message: message, session: session)
                } else {
                    failed(call, signal: signal, reason: .unavailable, session: session, idIsLive: false)
                    done = true
                }
            }
            if done { resume(session) }
        }
        return false
    }

    /// Acts on the store's answer to an invite: `false` when the call waits for the permission hook
    /// (which then resumes the session).
    private func invited(
        _ call: Call,
        _ outcome: InviteOutcome,
        signal: Signal,
        message: ChatMessage,
        session: Session
    ) -> Bool {
        switch outcome {
        case .ringing(let ringing, let calleeNode):
            guard let permission else {
                ring(ringing, at: calleeNode, signal: signal, message: message, session: session)
                return true
            }
            ask(permission, about: ringing, at: calleeNode, signal: signal, message: message, session: session)
            return false
        case .offline(let idIsLive):
            failed(call, signal: signal, reason: .offline, session: session, idIsLive: idIsLive)
        case .busy(let idIsLive):
            failed(call, signal: signal, reason: .busy, session: session, idIsLive: idIsLive)
        case .glare(let standing):
            // The caller is that call's callee: its copy here lets them accept it (and negotiate).
            local.cache(standing)
            reply(session, .callFailed(callId: standing.id, to: call.callee, reason: .glare))
            log(.failed, call, session, level: "warn", reason: CallFailureReason.glare.rawValue)
        case .forbidden:
            failed(call, signal: signal, reason: .forbidden, session: session, idIsLive: false)
        case .duplicate:
            // The same answer as for an id that names an ended call's record: a stranger learns nothing.
            reply(session, .callFailed(callId: call.id, to: call.callee, reason: .forbidden))
        }
        return true
    }

    /// Rings a call the store took (and the permission hook allowed): the ring timer, the invite record,
    /// the callee gets the invite and the caller `call-ringing`.
    func ring(_ ringing: Call, at calleeNode: String, signal: Signal, message: ChatMessage, session: Session) {
        local.cache(ringing)
        state.withLock { state in
            state.ringTimers[ringing.id] = scheduler.schedule(after: settings.ringTimeout) { [weak self] in
                self?.ringTimeoutExpired(callId: ringing.id)
            }
            // Records and events are queued under the lock so they keep the order of transitions.
            records.enqueue(ringing.record(status: .invite, now: ringing.createdAt))
            log(.invite, ringing, session)
            log(.ringing, ringing, session)
        }
        let relayed = signal.relayed(in: message, from: session.identity, callId: ringing.id)
        forward(relayed, to: ringing.callee, at: .node(calleeNode), effect: .update(ringing))
        reply(session, .callRinging(callId: ringing.id, to: ringing.callee))
    }

    /// Refuses an invite: `call-failed` to the caller, a failed record for offline and busy, a log line.
    /// The record takes a fresh id when `idIsLive` (a refused invite never overwrites a real call's record).
    private func failed(_ call: Call, signal: Signal, reason: CallFailureReason, session: Session, idIsLive: Bool) {
        reply(session, .callFailed(callId: signal.callId, to: call.callee, reason: reason))
        let failed = Call(
            id: idIsLive ? CallID.generate() : call.id,
            caller: call.caller,
            callee: call.callee,
            callType: call.callType,
            createdAt: call.createdAt
        )
        if reason == .offline || reason == .busy {
            records.enqueue(
                failed.record(status: .failed, endedAt: call.createdAt, endReason: reason.rawValue, now: call.createdAt)
            )
        }
        // Beside the failure, for the app's backend to push to the callee's phone (§10).
        if reason == .offline { log(.offline, failed, session) }
        log(.failed, failed, session, level: "warn", reason: reason.rawValue)
    }

    // MARK: Accept, reject, hangup

    private func transition(
        _ operation: CallOperation,
        _ signal: Signal,
        in message: ChatMessage,
        from session: Session,
        now: Int64
    ) -> Bool {
        let sender = session.user
        let recipient = message.to
        hold(session)
        let answer = pending.begin()
        calls.apply(operation, from: sender, to: recipient, callId: signal.callId, now: now) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(let outcome):
                applied(outcome, signal: signal, message: message, session: session, now: now)
            case .failure:
                // The cluster is unreachable: a call between two users of this node goes on locally.
                if isLocal(recipient) {
                    let outcome = local.apply(operation, from: sender, to: recipient, callId: signal.callId, now: now)
                    applied(outcome, signal: signal, message: message, session: session, now: now)
                } else {
                    unreachable(session, recipient)
                }
            }
            resume(session)
        }
        return cluster == nil  // alone, the store answered at once
    }

    /// Records a transition that took effect, keeps the local copy of the call, and relays the signal.
    private func applied(_ outcome: TransitionOutcome, signal: Signal, message: ChatMessage, session: Session, now: Int64) {
        let call: Call
        let peerNode: String?
        let effect: CallEffect
        switch outcome {
        case .noCall(let why):
            return reply(session, .error(.noCall, message: why))
        case .found(let found, let node):
            (call, peerNode, effect) = (found, node, .none)
        case .connected(let connected, let first):
            // Not relayed, no answer; a repeat is ignored (PROTOCOL.md §8).
            guard first else { return }
            local.cache(connected)
            state.withLock { _ in
                records.enqueue(connected.record(status: .accepted, now: now))
                log(.connected, connected, session)  // once per call, for the log and the app's backend (§10)
            }
            return
        case .accepted(let accepted, let node):
            (call, peerNode, effect) = (accepted, node, .update(accepted))
            local.cache(accepted)
            state.withLock { state in
                state.ringTimers.removeValue(forKey: accepted.id)?.cancel()
                records.enqueue(accepted.record(status: .accepted, now: now))
                log(.accept, accepted, session)
            }
        case .ended(let ended, let status, let node):
            (call, peerNode, effect) = (ended, node, .end(callId: ended.id))
            local.forget(callId: ended.id)
            state.withLock { state in
                state.cancelTimers(of: ended)
                let reason = signal.endReason
                // Another node's clock may have stamped the accept this end raced with a moment later:
                // an end is recorded after its start, so the end's snapshot is the newer one.
                let endedAt = max(now, (ended.startedAt ?? ended.createdAt) + 1)
                records.enqueue(
                    ended.record(
                        status: status,
                        endedAt: endedAt,
                        endReason: reason,
                        now: endedAt
                    )
                )
                log(status == .rejected ? .reject : .hangup, ended, session, reason: reason)
            }
        }
        // A hangup or reject is relayed with its reason, the default included (PROTOCOL.md §8).
        let reasoned = signal.endReason.map(signal.reasoned) ?? signal
        let relayed = reasoned.relayed(in: message, from: session.identity, callId: call.id)
        forward(relayed, to: message.to, at: .node(peerNode), effect: effect)
    }

    // MARK: Offer, answer, ICE candidates

    /// Relays negotiation inside a call, checked against the local copy; a call it lacks (the user moved
    /// here mid-call) is looked up once in the cluster's store.
    private func negotiate(_ signal: Signal, in message: ChatMessage, from session: Session, now: Int64) -> Bool {
        let sender = session.user
        switch local.find(from: sender, to: message.to, callId: signal.callId) {
        case .success(let call):
            return relay(signal, in: message, call: call, from: session, at: .unknown)
        case .failure(let noCall) where cluster == nil:
            reply(session, .error(.noCall, message: noCall.message))
            return true
        case .failure:
            break
        }
        hold(session)
        let answer = pending.begin()
        calls.apply(.lookup, from: sender, to: message.to, callId: signal.callId, now: now) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(.found(let call, let peerNode)):
                local.cache(call)
                guard relay(signal, in: message, call: call, from: session, at: .node(peerNode)) else { return }
            case .success(.noCall(let why)):
                reply(session, .error(.noCall, message: why))
            case .success:
                break  // a look-up changes no call
            case .failure:
                unreachable(session, message.to)
            }
            resume(session)
        }
        return false
    }

    /// Relays a negotiation signal of a call; `false` when it waits for a presence look-up.
    private func relay(
        _ signal: Signal,
        in message: ChatMessage,
        call: Call,
        from session: Session,
        at whereabouts: Whereabouts
    )
        -> Bool
    {
        let relayed = signal.relayed(in: message, from: session.identity, callId: call.id)
        return forward(
            relayed,
            to: message.to,
            at: whereabouts,
            from: session,
            notify: session,
            holding: session,
            offline: .reconnecting
        )
    }
}
