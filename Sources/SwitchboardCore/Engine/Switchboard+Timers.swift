import SwitchboardProto

/// Ring timeouts and reconnect graces (PROTOCOL.md §3): what ends a call that nobody ends.
extension Switchboard {
    /// Gives `user` the reconnect grace; when it runs out and the user has no session anywhere, their
    /// call ends. Call with the state locked.
    func startGrace(for user: String, in state: inout State) {
        guard state.graceTimers[user] == nil else { return }
        state.graceTimers[user] = scheduler.schedule(after: settings.reconnectGrace) { [weak self] in
            self?.reconnectGraceExpired(for: user)
        }
    }

    /// Users of a dead node who were in a call (the cluster's reaper found them): their peers are told
    /// after the reconnect grace unless they come back.
    package func orphaned(_ users: [String]) {
        guard !users.isEmpty else { return }
        logger.info("users of a dead node left in calls", metadata: ["users": "\(users.count)"])
        state.withLock { state in
            for user in users where state.sessions[user] == nil { startGrace(for: user, in: &state) }
        }
    }

    func ringTimeoutExpired(callId: String) {
        let now = clock.nowMilliseconds()
        state.withLock { _ = $0.ringTimers.removeValue(forKey: callId) }
        let answer = pending.begin()
        calls.expire(callId: callId, now: now) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(let call?):
                timedOut(call, now: now)
            case .success(nil):
                // Answered or ended meanwhile; a ringing local copy is stale.
                local.forgetIfRinging(callId: callId)
            case .failure:
                if let call = local.expire(callId: callId) { timedOut(call, now: now) }
            }
        }
    }

    private func timedOut(_ call: Call, now: Int64) {
        local.forget(callId: call.id)
        state.withLock { state in
            state.cancelTimers(of: call)
            records.enqueue(call.record(status: .missed, endedAt: now, endReason: HangupReason.timeout.rawValue, now: now))
            log(.timeout, call, nil, reason: HangupReason.timeout.rawValue)
        }
        for party in [call.caller, call.callee] {
            let notice = Notice.callHangup(callId: call.id, reason: .timeout).message(to: party, now: now)
            forward(notice, to: party, effect: .end(callId: call.id))
        }
    }

    private func reconnectGraceExpired(for user: String) {
        let now = clock.nowMilliseconds()
        let isBack = state.withLock { state -> Bool in
            state.graceTimers[user] = nil
            return state.sessions[user] != nil
        }
        guard !isBack else { return }
        let answer = pending.begin()
        calls.abandon(user, now: now) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(let parted?):
                abandoned(parted.call, by: user, peerNode: parted.peerNode, now: now)
            case .success(nil):
                forgetCall(of: user)
            case .failure:
                if let parted = local.abandon(user) { abandoned(parted.call, by: user, peerNode: parted.peerNode, now: now) }
            }
        }
    }

    /// The user is back on another node, or their call ended elsewhere: the local copy is no longer
    /// needed unless its other party is here.
    private func forgetCall(of user: String) {
        guard let call = local.call(of: user), !isLocal(user), !isLocal(call.peer(of: user)) else { return }
        local.forget(callId: call.id)
    }

    private func abandoned(_ call: Call, by user: String, peerNode: String?, now: Int64) {
        let reason = HangupReason.peerDisconnected
        local.forget(callId: call.id)
        keptSignals.discard(user)
        state.withLock { state in
            state.cancelTimers(of: call)
            records.enqueue(call.record(status: .hungUp, endedAt: now, endReason: reason.rawValue, now: now))
            log(.hangup, call, nil, reason: reason.rawValue)
        }
        let peer = call.peer(of: user)
        let notice = Notice.callHangup(callId: call.id, reason: reason).message(to: peer, now: now)
        forward(notice, to: peer, at: .node(peerNode), effect: .end(callId: call.id))
    }
}
