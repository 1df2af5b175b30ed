import NIOCore
import SwitchboardCore
import SwitchboardProto

extension ClusterSwitchboard {
    /// Gives `user` the reconnect grace; when it runs out and the user has no session anywhere, their
    /// call ends. Call with the state locked.
    func startGrace(for user: String, in state: inout State) {
        guard state.graceTimers[user] == nil else { return }
        state.graceTimers[user] = scheduler.schedule(after: settings.reconnectGrace) { [weak self] in
            self?.reconnectGraceExpired(for: user)
        }
    }

    /// Users of a dead node who were in a call (the reaper found them): their peers are told after the
    /// reconnect grace unless they come back.
    func orphaned(_ users: [String]) {
        guard !users.isEmpty else { return }
        logger.info("users of a dead node left in calls", metadata: ["users": "\(users.count)"])
        state.withLock { state in
            for user in users where state.sessions[user] == nil { startGrace(for: user, in: &state) }
        }
    }

    func ringTimeoutExpired(callId: String) {
        let now = clock.nowMilliseconds()
        state.withLock { _ = $0.ringTimers.removeValue(forKey: callId) }
        scripts.expire(callId: callId, now: now).whenComplete { [self] result in
            switch result {
            case .success(let reply):
                if let call = reply.call {
                    timedOut(call, now: now)
                } else {
                    // Answered or ended meanwhile; a ringing mirror copy is stale.
                    state.withLock { state in
                        if state.book.call(id: callId)?.state == .ringing { state.book.remove(callId: callId) }
                    }
                }
            case .failure:
                if let call = state.withLock({ $0.book.expireRinging(callId: callId) }) { timedOut(call, now: now) }
            }
        }
    }

    private func timedOut(_ call: Call, now: Int64) {
        state.withLock { state in
            state.book.remove(callId: call.id)
            state.cancelTimers(of: call)
            records.enqueue(call.record(status: .missed, endedAt: now, endReason: HangupReason.timeout.rawValue, now: now))
            log(.timeout, call, nil, reason: "timeout")
        }
        for party in [call.caller, call.callee] {
            let notice = Notice.callHangup(callId: call.id, reason: .timeout).message(to: party, now: now)
            _ = forward(notice, to: party, effect: .end(callId: call.id), notify: nil)
        }
    }

    private func reconnectGraceExpired(for user: String) {
        let now = clock.nowMilliseconds()
        let isBack = state.withLock { state -> Bool in
            state.graceTimers[user] = nil
            return state.sessions[user] != nil
        }
        guard !isBack else { return }
        scripts.abandon(user, now: now).whenComplete { [self] result in
            switch result {
            case .success(let reply):
                if let call = reply.call {
                    abandoned(call, by: user, peerNode: reply.detail, now: now)
                } else {
                    forgetCall(of: user)
                }
            case .failure:
                let call = state.withLock { state -> Call? in
                    guard state.sessions[user] == nil else { return nil }
                    return state.book.abandon(by: user)
                }
                if let call { abandoned(call, by: user, peerNode: nodeId, now: now) }
            }
        }
    }

    /// The user is back on another node, or their call ended elsewhere: the mirror no longer needs the
    /// call unless its other party is here.
    private func forgetCall(of user: String) {
        state.withLock { state in
            guard state.sessions[user] == nil, let call = state.book.call(of: user),
                state.sessions[call.peer(of: user)] == nil
            else { return }
            state.book.remove(callId: call.id)
        }
    }

    private func abandoned(_ call: Call, by user: String, peerNode: String, now: Int64) {
        let reason = HangupReason.peerDisconnected
        state.withLock { state in
            state.book.remove(callId: call.id)
            state.cancelTimers(of: call)
            records.enqueue(call.record(status: .hungUp, endedAt: now, endReason: reason.rawValue, now: now))
            log(.hangup, call, nil, reason: reason.rawValue)
        }
        let peer = call.peer(of: user)
        let notice = Notice.callHangup(callId: call.id, reason: reason).message(to: peer, now: now)
        _ = forward(notice, to: peer, node: peerNode, effect: .end(callId: call.id), notify: nil)
    }
}
