import SwitchboardProto

/// Permission (PROTOCOL.md §10): block lists, checked for invites and direct messages, and the app's
/// backend's answer to each invite the store took.
///
/// While the backend is asked, the call stands in the store as ringing (the callee is busy for anyone
/// else) but nothing of it reaches the callee: no invite, no ring timer, no record. Allowed, it rings;
/// denied, the store ends it, its record has status 5 (`failed`) and end reason `forbidden`, and the
/// caller gets `call-failed` `forbidden`. Meanwhile the caller's later messages wait in its session
/// queue, in both modes; no other session waits.
extension Switchboard {
    /// Who blocked whom: the cluster's list, or this node's.
    package var blocks: any BlockList { cluster?.blocks ?? localBlocks }

    /// Runs `proceed` unless `recipient` blocked `session`'s user, else `refuse`: `false` when it waits
    /// for the answer (the session is held and resumed after) or `proceed` does.
    ///
    /// While the cluster's list cannot be asked, nobody is blocked: messages and calls between users of
    /// this node go on as they do without Redis.
    func unlessBlocked(
        _ recipient: String,
        from session: Session,
        refuse: @escaping @Sendable () -> Void,
        proceed: @escaping @Sendable () -> Bool
    ) -> Bool {
        guard let cluster else {
            if localBlocks.contains(session.user, blockedBy: recipient) {
                refuse()
                return true
            }
            return proceed()
        }
        hold(session)
        let answer = pending.begin()
        cluster.blocks.isBlocked(session.user, by: recipient) { [self] result in
            defer { answer.end() }
            if case .success(true) = result {
                refuse()
            } else if !proceed() {
                return  // it waits again, and resumes the session itself
            }
            resume(session)
        }
        return false
    }

    /// Asks `permission` about `ringing`, which the store took: it rings if allowed, ends as forbidden
    /// if not. The session waits meanwhile, in both modes, and is resumed after.
    func ask(
        _ permission: any InvitePermission,
        about ringing: Call,
        at calleeNode: String,
        signal: Signal,
        message: ChatMessage,
        session: Session
    ) {
        state.withLock { $0.queues.hold(session.id) }
        let answer = pending.begin()
        let question = InviteQuestion(
            caller: ringing.caller,
            callee: ringing.callee,
            callId: ringing.id,
            callType: ringing.callType
        )
        permission.ask(question) { [self] allowed in
            guard allowed else { return denied(ringing, session: session, answer: answer) }
            ring(ringing, at: calleeNode, signal: signal, message: message, session: session)
            drain(session)
            answer.end()
        }
    }

    /// Ends a call the backend denied: the store lets it go, then the caller hears `forbidden`.
    private func denied(_ call: Call, session: Session, answer: PendingAnswers.Answer) {
        let now = clock.nowMilliseconds()
        calls.expire(callId: call.id, now: now) { [self] result in
            defer { answer.end() }  // after the drain
            // Unreachable, the cluster's store drops the call after its ring TTL; alone, this is the store.
            if case .failure = result { _ = local.expire(callId: call.id) }
            reply(session, .callFailed(callId: call.id, to: call.callee, reason: .forbidden))
            state.withLock { _ in
                records.enqueue(call.record(status: .failed, endedAt: now, endReason: "forbidden", now: now))
                log(.failed, call, session, level: "warn", reason: CallFailureReason.forbidden.rawValue)
            }
            drain(session)
        }
    }
}
