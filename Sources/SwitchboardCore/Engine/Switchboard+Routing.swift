import SwitchboardProto

/// Where a message for a user goes: a session here, another node, or nowhere (PROTOCOL.md §6), and what
/// other nodes send here.
extension Switchboard {
    /// What is known of where a user is.
    enum Whereabouts: Equatable {
        /// Nothing: routes and presence tell.
        case unknown
        /// The store answered with the call: the session is on this node (`nil`: online nowhere).
        case node(String?)
    }

    private enum Route {
        /// The sender's session was replaced: its message is not acted on.
        case ignored
        case local(Session)
        /// The session is resuming: the message waits behind what was kept (these gave way to it).
        case waiting(displaced: [ChatMessage])
        case remote(String)
        case nowhere
        case unknown
    }

    /// What `notify` is told when the recipient is online nowhere.
    enum OfflineNotice {
        /// "user is offline"
        case offline
        /// The recipient is a party of the sender's call: "user is reconnecting; signal not delivered".
        case reconnecting

        func message(for user: String) -> String {
            switch self {
            case .offline: "\(user) is offline"
            case .reconnecting: "\(user) is reconnecting; signal not delivered"
            }
        }
    }

    /// Delivers `message` to `user`: written here, or sent to the user's node (looked up in presence when
    /// not known), or, for a user away from their call, kept for them (``keepOrReport``). `notify` is told
    /// when the user is offline (`offline` says how) or cannot be reached; `nil` for call transitions and
    /// server notices, whose recipients may be reconnecting.
    ///
    /// Returns `false` when it waits for a presence look-up: `holding` is then held and resumed after.
    /// A client's message names its `sender`, whose session must still be current.
    @discardableResult
    func forward(
        _ message: ChatMessage,
        to user: String,
        at whereabouts: Whereabouts = .unknown,
        effect: CallEffect = .none,
        from sender: Session? = nil,
        notify: Session? = nil,
        holding: Session? = nil,
        offline: OfflineNotice = .offline
    ) -> Bool {
        let route = state.withLock { state -> Route in
            if let sender, !state.isCurrent(sender) { return .ignored }
            if let session = state.sessions[user] {
                guard state.isResuming(session) else { return .local(session) }
                return .waiting(displaced: state.waitForResume(message, of: user))
            }
            guard cluster != nil else { return .nowhere }
            if case .node(let node?) = whereabouts, node != nodeId {
                state.routes[user] = node
                return .remote(node)
            }
            if let node = state.routes[user] { return .remote(node) }
            return whereabouts == .node(nil) ? .nowhere : .unknown
        }
        switch route {
        case .ignored:
            break
        case .local(let session):
            // Server notices (`from` "") are not relays.
            if !message.from.isEmpty { metrics.relayed(.local) }
            session.outlet.deliver(message)
        case .waiting(let displaced):
            if !message.from.isEmpty { metrics.relayed(.local) }
            reportDisplaced(displaced, for: user)
        case .remote(let node):
            send(message, to: user, at: node, effect: effect)
        case .nowhere:
            return keepOrReport(message, for: user, effect: effect, notify: notify, holding: holding, offline: offline)
        case .unknown:
            guard let cluster else { return true }
            if let holding { hold(holding) }
            let answer = pending.begin()
            cluster.presence.lookup(user) { [self] result in
                defer { answer.end() }
                var waits = false
                switch result {
                case .success(let node?) where node != nodeId:
                    state.withLock { $0.routes[user] = node }
                    send(message, to: user, at: node, effect: effect)
                case .success:
                    waits = !keepOrReport(message, for: user, effect: effect, notify: notify, holding: holding, offline: offline)
                case .failure:
                    if let notify { unreachable(notify, user) }
                }
                if !waits, let holding { resume(holding) }
            }
            return holding == nil
        }
        return true
    }

    /// Sends `message` for `user` to `node`; if it does not get there, ``undelivered(_:for:at:effect:isRetry:because:)``.
    private func send(
        _ message: ChatMessage,
        to user: String,
        at node: String,
        effect: CallEffect,
        isRetry: Bool = false
    ) {
        guard let cluster else { return }
        if !message.from.isEmpty { metrics.relayed(.remote) }
        cluster.delivery.send(message, to: user, at: node, effect: effect, isRetry: isRetry)
    }

    /// `message` for `user` did not reach `node` (`nil`: it could not be decoded again): looks once more,
    /// or tells the sender. Whom to tell follows ``bounced(_:for:effect:isRetry:from:)``: the sender's
    /// current session, for a message of theirs that changes no call.
    package func undelivered(
        _ message: ChatMessage?,
        for user: String,
        at node: String,
        effect: CallEffect,
        isRetry: Bool,
        because failure: RemoteDeliveryFailure
    ) {
        let notify = state.withLock { state -> Session? in
            // A full backlog says nothing about where the user is; the other failures may.
            if failure != .bufferFull, state.routes[user] == node { state.routes[user] = nil }
            guard let message, case .none = effect, !message.from.isEmpty else { return nil }
            return state.sessions[message.from]
        }
        switch failure {
        case .noReceiver where !isRetry:
            // The node is gone or away: the user may be offline now, or back elsewhere.
            if let message {
                lookAgain(message, for: user, notFrom: node, effect: effect, notify: notify)
            }
        default:
            if let notify { unreachable(notify, user) }
        }
    }

    /// `user` was not reached at `staleNode`: looks them up again and sends once more, or tells `notify`.
    private func lookAgain(
        _ message: ChatMessage,
        for user: String,
        notFrom staleNode: String,
        effect: CallEffect,
        notify: Session?
    ) {
        let answer = pending.begin()
        cluster?.presence.lookup(user) { [self] result in
            defer { answer.end() }
            switch result {
            case .success(let node?) where node == nodeId:
                forward(message, to: user, effect: effect, notify: notify)
            case .success(let node?) where node != staleNode:
                state.withLock { $0.routes[user] = node }
                send(message, to: user, at: node, effect: effect, isRetry: true)
            case .success(.some), .failure:
                if let notify { unreachable(notify, user) }
            case .success(nil):
                _ = keepOrReport(message, for: user, effect: effect, notify: notify, holding: nil, offline: .offline)
            }
        }
    }

    /// Tells `session` that a message for `user` could not cross the cluster.
    func unreachable(_ session: Session, _ user: String) {
        reply(session, .error(.unavailable, message: "message for \(user) not delivered: cluster backend unreachable"))
    }

    // MARK: From other nodes

    /// Whom a message from another node finds here.
    private enum Arrival {
        /// Nobody: it goes back to the sender's node.
        case absent
        /// The user's session closed here during their call, within the reconnect grace.
        case away
        case present(Session)
        /// The session is resuming: the message waits behind what was kept (these gave way to it).
        case waiting(displaced: [ChatMessage])

        var isHere: Bool {
            switch self {
            case .present, .waiting: true
            case .absent, .away: false
            }
        }
    }

    /// A message another node sent for `user`: applies the change to the call it carries and delivers it,
    /// if the user's session is here; `false` if it is not. Delivered, it goes to the socket in the bytes
    /// it came in; it is decoded only to be kept.
    package func deliverFromCluster(
        _ encoded: some EncodedChatMessage,
        to user: String,
        effect: CallEffect,
        from origin: String
    ) -> Bool {
        let sender = encoded.sender
        let arrival = state.withLock { state -> Arrival in
            guard let session = state.sessions[user] else {
                return state.graceTimers[user] != nil ? .away : .absent
            }
            // Written only when it changes: a look-up is cheaper than a write on every delivery.
            if !sender.isEmpty, state.routes[sender] != origin { state.routes[sender] = origin }
            guard state.isResuming(session) else { return .present(session) }
            guard let message = encoded.decoded() else { return .waiting(displaced: []) }
            return .waiting(displaced: state.waitForResume(message, of: user))
        }
        switch effect {
        case .none:
            break
        case .update(let call):
            if arrival.isHere { local.cache(call) }
            // Accepted on the other party's node: the ring timer here (the caller's) has nothing to do.
            if call.state == .active { state.withLock { $0.ringTimers.removeValue(forKey: call.id)?.cancel() } }
        case .end(let callId):
            if let call = local.forget(callId: callId) { state.withLock { $0.cancelTimers(of: call) } }
        }
        switch arrival {
        case .absent:
            return false
        case .away:
            // The user left this node during a call: kept from here, in the order messages came, rather
            // than bounced (the sender's node would then keep later ones by another path).
            guard let message = encoded.decoded() else { break }
            _ = keepOrReport(
                message,
                for: user,
                effect: effect,
                notify: nil,
                sender: effect == .none && !sender.isEmpty ? sender : nil,
                holding: nil,
                offline: .reconnecting
            )
        case .present(let session):
            session.outlet.deliver(encoded: encoded)
        case .waiting(let displaced):
            reportDisplaced(displaced, for: user)
        }
        return true
    }

    /// A node this one sent `message` to does not have `user` (any more): looks again, once, or tells the
    /// sender. Only a client's own messages and in-call signals are worth a notice; transitions and
    /// server notices find their recipient through the reconnect grace.
    package func bounced(_ message: ChatMessage, for user: String, effect: CallEffect, isRetry: Bool, from node: String) {
        let notify = state.withLock { state -> Session? in
            if state.routes[user] == node { state.routes[user] = nil }
            guard case .none = effect, !message.from.isEmpty else { return nil }
            return state.sessions[message.from]
        }
        if isRetry {
            _ = keepOrReport(message, for: user, effect: effect, notify: notify, holding: nil, offline: .offline)
            return
        }
        lookAgain(message, for: user, notFrom: node, effect: effect, notify: notify)
    }

    /// `user` connected to another node: their session here is closed as replaced.
    package func replacedElsewhere(_ user: String) {
        let replaced = state.withLock { state -> Session? in
            guard let session = state.sessions.removeValue(forKey: user) else { return nil }
            state.forget(session)
            return session
        }
        if let replaced { closeReplaced(replaced) }
    }

    /// After the cluster's backend came back (perhaps emptied by a restart): registers every session of
    /// this node again and writes back the calls of its users that it lost. A user who connected
    /// elsewhere meanwhile keeps that newer session; this node's is closed as replaced.
    package func restoreAfterReconnect() {
        guard let cluster else { return }
        let now = clock.nowMilliseconds()
        let sessions = self.sessions
        let calls = local.allCalls
        for session in sessions {
            let answer = pending.begin()
            cluster.presence.restore(session.user, now: now) { [self] result in
                defer { answer.end() }
                guard case .success(_?) = result else { return }
                let replaced = state.withLock { state -> Session? in
                    guard state.isCurrent(session) else { return nil }
                    state.sessions[session.user] = nil
                    state.forget(session)
                    return session
                }
                if let replaced { closeReplaced(replaced) }
            }
        }
        for call in calls {
            let answer = pending.begin()
            cluster.calls.restore(call, now: now) { _ in answer.end() }
        }
        logger.info("presence restored", metadata: ["sessions": "\(sessions.count)", "calls": "\(calls.count)"])
    }
}
