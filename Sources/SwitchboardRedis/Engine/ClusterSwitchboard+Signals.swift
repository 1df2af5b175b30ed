import NIOCore
import SwitchboardCore
import SwitchboardProto

extension ClusterSwitchboard {
    /// Handles a signal of `session`: `false` when it finishes later by calling `resume`.
    func handle(
        _ signal: Signal,
        in message: ChatMessage,
        from session: Session,
        now: Int64,
        resume: @escaping @Sendable () -> Void
    ) -> Bool {
        switch signal.type {
        case .callInvite:
            return invite(signal, in: message, from: session, now: now, resume: resume)
        case .callAccept, .callReject, .callHangup:
            return transition(signal, in: message, from: session, now: now, resume: resume)
        case .offer, .answer, .iceCandidate:
            return negotiate(signal, in: message, from: session, now: now, resume: resume)
        }
    }

    // MARK: Invite

    private func invite(
        _ signal: Signal,
        in message: ChatMessage,
        from session: Session,
        now: Int64,
        resume: @escaping @Sendable () -> Void
    ) -> Bool {
        let caller = session.user
        let callee = message.to
        let call = Call(
            id: signal.callId ?? CallID.generate(), caller: caller, callee: callee, callType: signal.callType, createdAt: now
        )
        let refusal = state.withLock { state -> CallFailureReason? in
            let monotonic = clock.monotonicNanoseconds()
            var bucket =
                state.inviteBuckets[caller]
                ?? TokenBucket(capacity: settings.invitesPerMinute, per: .seconds(60), now: monotonic)
            defer { state.inviteBuckets[caller] = bucket }
            guard bucket.take(now: monotonic) else { return .rateLimited }
            return caller == callee ? .forbidden : nil
        }
        if let refusal {
            failed(call, signal: signal, reason: refusal, session: session, liveCallId: false)
            return true
        }
        scripts.invite(call, ringTTL: ringTTL).whenComplete { [self] result in
            defer { resume() }
            switch result {
            case .success(let reply):
                switch reply.outcome {
                case "ok":
                    ringing(reply.call ?? call, calleeNode: reply.detail, signal: signal, message: message, session: session)
                case "offline":
                    failed(call, signal: signal, reason: .offline, session: session, liveCallId: reply.detail == "live")
                case "busy":
                    failed(call, signal: signal, reason: .busy, session: session, liveCallId: reply.detail == "live")
                default:
                    // The same answer as for an id that names an ended call's record: a stranger learns nothing.
                    self.reply(session, .callFailed(callId: call.id, to: call.callee, reason: .forbidden))
                }
            case .failure:
                inviteWithoutRedis(call, signal: signal, message: message, session: session)
            }
        }
        return false
    }

    /// Redis is unreachable: a call between two users of this node rings from the mirror (written back
    /// to Redis on reconnect); any other is `unavailable`.
    private func inviteWithoutRedis(_ call: Call, signal: Signal, message: ChatMessage, session: Session) {
        let outcome = state.withLock { state -> Result<Call, InviteRefusal>? in
            guard state.sessions[call.callee] != nil else { return nil }
            return state.book.invite(
                callId: call.id, caller: call.caller, callee: call.callee, callType: call.callType, now: call.createdAt
            )
        }
        switch outcome {
        case nil:
            failed(call, signal: signal, reason: .unavailable, session: session, liveCallId: false)
        case .success(let call)?:
            ringing(call, calleeNode: nodeId, signal: signal, message: message, session: session)
        case .failure(.busy)?:
            failed(call, signal: signal, reason: .busy, session: session, liveCallId: false)
        case .failure(.forbidden)?:
            failed(call, signal: signal, reason: .forbidden, session: session, liveCallId: false)
        case .failure(.duplicateCallID)?:
            reply(session, .callFailed(callId: call.id, to: call.callee, reason: .forbidden))
        }
    }

    private func ringing(_ call: Call, calleeNode: String, signal: Signal, message: ChatMessage, session: Session) {
        state.withLock { state in
            state.book.restore(call)
            state.ringTimers[call.id] = scheduler.schedule(after: settings.ringTimeout) { [weak self] in
                self?.ringTimeoutExpired(callId: call.id)
            }
            // Records and events are queued under the lock so they keep the order of transitions.
            records.enqueue(call.record(status: .invite, now: call.createdAt))
            log(.invite, call, session)
            log(.ringing, call, session)
        }
        let relayed = signal.relayed(in: message, from: session.identity, callId: call.id)
        _ = forward(relayed, to: call.callee, node: calleeNode, effect: .update(call), notify: nil)
        reply(session, .callRinging(callId: call.id, to: call.callee))
    }

    /// Refuses an invite: `call-failed` to the caller, a failed record for offline and busy, a log line.
    /// The record takes a fresh id when `liveCallId` (a refused invite never overwrites a real call's record).
    private func failed(_ call: Call, signal: Signal, reason: CallFailureReason, session: Session, liveCallId: Bool) {
        reply(session, .callFailed(callId: signal.callId, to: call.callee, reason: reason))
        let recordId = liveCallId ? CallID.generate() : call.id
        if reason == .offline || reason == .busy {
            let failed = Call(id: recordId, caller: call.caller, callee: call.callee, callType: call.callType, createdAt: call.createdAt)
            records.enqueue(failed.record(status: .failed, endedAt: call.createdAt, endReason: reason.rawValue, now: call.createdAt))
        }
        events.emit(
            CallEvent(.failed, level: "warn", caller: call.caller, callee: call.callee, callId: recordId,
                      reason: reason.rawValue, connection: session.connection)
        )
    }

    // MARK: Accept, reject, hangup

    private func transition(
        _ signal: Signal,
        in message: ChatMessage,
        from session: Session,
        now: Int64,
        resume: @escaping @Sendable () -> Void
    ) -> Bool {
        let op: String
        switch signal.type {
        case .callAccept: op = "accept"
        case .callReject: op = "reject"
        default: op = "hangup"
        }
        let sender = session.user
        scripts.transition(op, from: sender, to: message.to, callId: signal.callId, now: now).whenComplete { [self] result in
            defer { resume() }
            switch result {
            case .success(let reply):
                guard let call = reply.call else {
                    return self.reply(session, .error(.noCall, message: reply.detail))
                }
                let transition: CallTransition =
                    switch reply.outcome {
                    case "accepted": .accepted(call)
                    case "rejected": .ended(call, status: .rejected)
                    default: .ended(call, status: .hungUp)
                    }
                apply(transition, signal: signal, message: message, session: session, peerNode: reply.detail, now: now)
            case .failure:
                // Redis is unreachable: a call between two users of this node goes on in the mirror.
                let local = state.withLock { state -> Result<CallTransition, NoCall>? in
                    guard state.sessions[message.to] != nil else { return nil }
                    return state.book.apply(signal.type, from: sender, to: message.to, callId: signal.callId, now: now)
                }
                switch local {
                case nil:
                    unreachable(session, message.to)
                case .failure(let noCall)?:
                    self.reply(session, .error(.noCall, message: noCall.message))
                case .success(let transition)?:
                    apply(transition, signal: signal, message: message, session: session, peerNode: nodeId, now: now)
                }
            }
        }
        return false
    }

    /// Mirrors a transition that took effect, records it, and relays the signal to the other party.
    private func apply(
        _ transition: CallTransition,
        signal: Signal,
        message: ChatMessage,
        session: Session,
        peerNode: String,
        now: Int64
    ) {
        let effect = state.withLock { state -> CallEffect in
            switch transition {
            case .accepted(let call):
                state.book.restore(call)
                state.ringTimers.removeValue(forKey: call.id)?.cancel()
                records.enqueue(call.record(status: .accepted, now: now))
                log(.accept, call, session)
                return .update(call)
            case .ended(let call, let status):
                state.book.remove(callId: call.id)
                state.cancelTimers(of: call)
                let reason = signal.body["reason"]?.stringValue
                // Another node's clock may have stamped the accept this end raced with a moment later:
                // an end is recorded after its start, so the end's snapshot is the newer one.
                let endedAt = max(now, (call.startedAt ?? call.createdAt) + 1)
                records.enqueue(
                    call.record(
                        status: status, endedAt: endedAt,
                        endReason: reason ?? (status == .rejected ? "rejected" : "hangup"), now: endedAt
                    )
                )
                log(status == .rejected ? .reject : .hangup, call, session, reason: reason)
                return .end(callId: call.id)
            case .relayed:
                return .none
            }
        }
        let relayed = signal.relayed(in: message, from: session.identity, callId: transition.call.id)
        _ = forward(relayed, to: message.to, node: peerNode, effect: effect, notify: nil)
    }

    // MARK: Offer, answer, ICE candidates

    /// Relays negotiation inside a call, checked against the mirror; a call the mirror lacks (the user
    /// moved here mid-call) is looked up once.
    private func negotiate(
        _ signal: Signal,
        in message: ChatMessage,
        from session: Session,
        now: Int64,
        resume: @escaping @Sendable () -> Void
    ) -> Bool {
        let sender = session.user
        let known = state.withLock {
            $0.book.apply(signal.type, from: sender, to: message.to, callId: signal.callId, now: now)
        }
        if case .success(let transition) = known {
            return relay(signal, in: message, call: transition.call, from: session, node: nil, resume: resume)
        }
        scripts.transition("lookup", from: sender, to: message.to, callId: signal.callId, now: now).whenComplete {
            [self] result in
            switch result {
            case .success(let reply):
                if let call = reply.call {
                    state.withLock { $0.book.restore(call) }
                    if relay(signal, in: message, call: call, from: session, node: reply.detail, resume: resume) { resume() }
                    return
                }
                self.reply(session, .error(.noCall, message: reply.detail))
            case .failure:
                unreachable(session, message.to)
            }
            resume()
        }
        return false
    }

    private func relay(
        _ signal: Signal,
        in message: ChatMessage,
        call: Call,
        from session: Session,
        node: String?,
        resume: @escaping @Sendable () -> Void
    ) -> Bool {
        let relayed = signal.relayed(in: message, from: session.identity, callId: call.id)
        return forward(relayed, to: message.to, node: node, effect: .none, notify: session, resume: resume)
    }
}
