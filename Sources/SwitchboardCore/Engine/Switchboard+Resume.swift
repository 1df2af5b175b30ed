import SwitchboardProto

/// Reconnecting during a call (PROTOCOL.md §8): signals for a party who is away within its reconnect
/// grace are kept (``KeptSignalStore``: in-process alone, Redis in a cluster), and delivered after
/// `call-resumed` when the user connects again, on whichever node.
///
/// Only messages that did not find their recipient come here: the relay path of a present party does
/// nothing new but look at ``Switchboard/State/resuming`` where it reads the session anyway.
extension Switchboard {
    /// The store of kept signals: the cluster's, or the local one on a single node.
    var keptSignals: any KeptSignalStore { cluster?.kept ?? localKept }

    /// `message` found no session of `user`: kept if it is a signal of a call `user` is away from,
    /// else `notify` (or, for a message from another node, `sender`) is told that the user is offline.
    /// Returns `false` when it waits for the store (in a cluster): `holding` is then held and resumed
    /// after, so that the sender's later messages stay behind.
    func keepOrReport(
        _ message: ChatMessage,
        for user: String,
        effect: CallEffect,
        notify: Session?,
        sender: String? = nil,
        holding: Session?,
        offline: OfflineNotice
    ) -> Bool {
        let reportOffline: @Sendable () -> Void = { [self] in
            let notice = Notice.error(.offline, message: offline.message(for: user))
            if let notify {
                reply(notify, notice)
            } else if let sender {
                metrics.notice(notice)
                forward(notice.message(to: sender, now: clock.nowMilliseconds()), to: sender)
            }
        }
        guard let callId = message.signalCallId else {
            reportOffline()
            return true
        }
        let held = cluster != nil ? holding : nil
        if let held { hold(held) }
        let answer = pending.begin()
        keptSignals.keep(message, for: user, callId: callId) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(.kept(let displaced)):
                metrics.keptSignal()
                reportDisplaced(displaced, for: user)
            case .success(.present(let node)):
                // Back meanwhile: delivered there, behind what was kept.
                let whereabouts: Whereabouts = node == nodeId ? .unknown : .node(node)
                forward(message, to: user, at: whereabouts, effect: effect, notify: notify, offline: offline)
            case .success(.notAway):
                reportOffline()
            case .failure:
                if let notify { unreachable(notify, user) }
            }
            if let held { resume(held) }
        }
        return held == nil
    }

    /// Messages kept for `user` that gave way to newer ones: each sender is told, at once.
    func reportDisplaced(_ displaced: [ChatMessage], for user: String) {
        guard !displaced.isEmpty else { return }
        metrics.keptSignalsDisplaced(displaced.count)
        let now = clock.nowMilliseconds()
        for message in displaced where !message.from.isEmpty {
            let notice = Notice.keptSignalGaveWay(callId: message.signalCallId, recipient: user)
            metrics.notice(notice)
            forward(notice.message(to: message.from, now: now), to: message.from)
        }
    }

    /// `user` left during `callId`: what is sent to them in that call is kept for the grace.
    func markAway(_ user: String, callId: String) {
        let answer = pending.begin()
        keptSignals.away(user, callId: callId) { answer.end() }
    }

    /// Fetches what was kept for `session`'s user, then lets messages reach the session directly.
    /// `replacedLive`: the session took over from a live one (no reconnect: no `call-resumed` unless
    /// the user was away too).
    func resumeSignals(of session: Session, replacedLive: Bool) {
        let answer = pending.begin()
        keptSignals.resume(session.user) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(let resumption):
                resumed(session, resumption, replacedLive: replacedLive)
            case .failure(let error):
                logger.debug("kept signals not fetched", metadata: ["user": "\(session.user)", "error": "\(error.description)"])
                resumed(session, .none, replacedLive: replacedLive)
            }
        }
    }

    /// Delivers `call-resumed` (for a user back in their call) and the kept signals to `session`, then
    /// what arrived for it meanwhile, until nothing waits; then tells the other party `peer-reconnected`.
    private func resumed(_ session: Session, _ resumption: Resumption, replacedLive: Bool) {
        let user = session.user
        guard state.withLock({ $0.isCurrent(session) }) else {
            // Replaced meanwhile: what was kept goes to the newer session, behind its own.
            for message in resumption.kept { forward(message, to: user) }
            return
        }
        let now = clock.nowMilliseconds()
        let call = resumption.wasAway || !replacedLive ? resumption.call : nil
        var frames: [ChatMessage] = []
        if let call {
            if cluster != nil { local.cache(call) }
            let notice = Notice.callResumed(callId: call.id, peer: call.peer(of: user), state: call.state)
            frames.append(notice.message(to: user, now: now))
        }
        frames += resumption.kept
        while true {
            for frame in frames { session.outlet.deliver(frame) }
            let waiting = state.withLock { state -> [ChatMessage]? in
                guard state.isCurrent(session) else { return nil }
                guard var queue = state.resumeQueues.removeValue(forKey: user), !queue.isEmpty else {
                    state.resuming.remove(session.id)
                    return nil
                }
                return queue.removeAll()
            }
            guard let waiting else { break }
            frames = waiting
        }
        if let call {
            let peer = call.peer(of: user)
            forward(Notice.peerReconnected(callId: call.id).message(to: peer, now: now), to: peer)
        }
    }
}

extension Switchboard.State {
    /// Queues `message` for `user`'s session while it resumes; answers what gave way to it.
    mutating func waitForResume(_ message: ChatMessage, of user: String) -> [ChatMessage] {
        resumeQueues[user, default: KeptQueue(limits: .standard)].append(message)
    }
}
