import NIOCore
import SwitchboardCore
import SwitchboardProto

extension ClusterSwitchboard {
    /// Where a message for a user goes.
    private enum Route {
        case local(Session)
        case remote(String)
        case unknown
    }

    /// Delivers `message` to `user`: written here, or published to the user's node (looked up in
    /// presence when not known yet). `notify` is told when the user is offline or unreachable; `nil` for
    /// call transitions and server notices, whose recipients may be reconnecting.
    ///
    /// Returns `false` when it finishes later by calling `resume` (a presence lookup).
    func forward(
        _ message: ChatMessage,
        to user: String,
        node knownNode: String? = nil,
        effect: CallEffect,
        notify: Session?,
        resume: (@Sendable () -> Void)? = nil
    ) -> Bool {
        let route = state.withLock { state -> Route in
            if let session = state.sessions[user] { return .local(session) }
            if let node = knownNode, !node.isEmpty, node != nodeId {
                state.routes[user] = node
                return .remote(node)
            }
            return state.routes[user].map(Route.remote) ?? .unknown
        }
        switch route {
        case .local(let session):
            metrics.relayed(.local)
            session.outlet.deliver(message)
            return true
        case .remote(let node):
            publish(message, to: user, at: node, effect: effect, notify: notify)
            return true
        case .unknown where knownNode == "":
            // The script that answered the node found the user offline.
            if let notify { reply(notify, .error(.offline, message: "\(user) is offline")) }
            return true
        case .unknown:
            scripts.lookup(user).whenComplete { [self] result in
                switch result {
                case .success(let node?) where node != nodeId:
                    state.withLock { $0.routes[user] = node }
                    publish(message, to: user, at: node, effect: effect, notify: notify)
                case .success:
                    if let notify { reply(notify, .error(.offline, message: "\(user) is offline")) }
                case .failure:
                    if let notify { unreachable(notify, user) }
                }
                resume?()
            }
            return resume == nil
        }
    }

    /// Publishes `message` for `user` to `node`'s inbox.
    ///
    /// While the delivery is open, only the encoded envelope (in the outbox) and the ids needed to
    /// answer are kept: should it fail, the message is decoded again from the envelope.
    func publish(
        _ message: ChatMessage,
        to user: String,
        at node: String,
        effect: CallEffect,
        notify: Session?,
        isRetry: Bool = false
    ) {
        let bytes: [UInt8]
        do {
            bytes = try message.serializedBytes()
        } catch {
            return  // proto3 messages without required fields always serialize
        }
        metrics.relayed(.remote)
        let envelope = Envelope(
            kind: .deliver, origin: nodeId, user: user, effect: effect, isRetry: isRetry, message: ByteBuffer(bytes: bytes),
            incarnation: incarnation
        )
        outbox.publish(envelope.encoded(), to: node, on: eventLoop) { [self] failure, envelope in
            // A full backlog says nothing about where the user is; the other failures may.
            if failure != .bufferFull { state.withLock { if $0.routes[user] == node { $0.routes[user] = nil } } }
            switch failure {
            case .noReceiver where !isRetry:
                // The node is gone or away: the user may be offline now, or back elsewhere.
                if let message = Self.message(in: envelope) {
                    lookAgain(message, for: user, notFrom: node, effect: effect, notify: notify)
                } else if let notify {
                    unreachable(notify, user)  // not an envelope of ours: cannot happen
                }
            default:
                // Redis unreachable, or the node's backlog full (`bufferFull`): nothing to look up.
                if let notify { unreachable(notify, user) }
            }
        }
    }

    /// The `ChatMessage` an encoded `deliver` envelope carries.
    static func message(in envelope: ByteBuffer) -> ChatMessage? {
        guard let envelope = try? Envelope(decoding: envelope) else { return nil }
        return try? ChatMessage(serializedBytes: Array(envelope.message.readableBytesView))
    }

    /// Tells `session` that a message for `user` could not cross the cluster.
    func unreachable(_ session: Session, _ user: String) {
        reply(session, .error(.unavailable, message: "message for \(user) not delivered: cluster backend unreachable"))
    }

    // MARK: Inbox

    /// Handles one envelope from this node's inbox or, with `isBroadcast`, from the channel every node
    /// reads (where a recipient who is not here is someone else's). The subscriber calls it in order.
    public func receiveEnvelope(_ payload: ByteBuffer, isBroadcast: Bool = false) {
        guard let envelopes = EnvelopeBundle.split(payload) else {
            return logger.warning("dropped a malformed cluster envelope bundle")
        }
        for envelope in envelopes { receive(envelope, isBroadcast: isBroadcast) }
    }

    private func receive(_ payload: ByteBuffer, isBroadcast: Bool) {
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: payload)
        } catch {
            return logger.warning("dropped a malformed cluster envelope", metadata: ["error": "\(error.message)"])
        }
        guard !isBroadcast else { return handle(envelope, isBroadcast: true) }
        sequencer.accept(
            envelope,
            onGap: { [self] position, through in askForReplay(position, through: through) },
            deliver: { [self] in handle($0, isBroadcast: false) }
        )
    }

    /// Asks the origin of a stream to publish `position.expected...through` again.
    func askForReplay(_ position: InboxSequencer.Position, through last: UInt64) {
        var range = ByteBuffer()
        range.writeInteger(position.incarnation)
        range.writeInteger(position.expected)
        range.writeInteger(last)
        let request = Envelope(kind: .replay, origin: nodeId, user: "", message: range, incarnation: incarnation)
        outbox.publish(request.encoded(), to: position.node, on: eventLoop) { _, _ in }  // the origin is gone: nothing to replay
    }

    /// The inbox's subscriber connected again: what was in flight to it may be lost, gap or not.
    public func inboxReconnected() {
        for position in sequencer.positions { askForReplay(position, through: .max) }
    }

    private func handle(_ envelope: Envelope, isBroadcast: Bool) {
        switch envelope.kind {
        case .deliver:
            deliverFromInbox(envelope, bounces: !isBroadcast)
        case .bounce:
            redeliver(envelope)
        case .replay:
            var range = envelope.message
            guard let incarnation = range.readInteger(as: UInt64.self), incarnation == self.incarnation,
                let first = range.readInteger(as: UInt64.self), let last = range.readInteger(as: UInt64.self)
            else { return }  // asked of an earlier run of this node: nothing kept
            outbox.replay(to: envelope.origin, from: first, through: last)
        case .replace:
            let replaced = state.withLock { state -> Session? in
                guard let session = state.sessions.removeValue(forKey: envelope.user) else { return nil }
                state.lanes[session.id] = nil
                return session
            }
            if let replaced { closeReplaced(replaced) }
        }
    }

    private func deliverFromInbox(_ envelope: Envelope, bounces: Bool) {
        guard let message = try? ChatMessage(serializedBytes: Array(envelope.message.readableBytesView)) else {
            return logger.warning("dropped a cluster envelope with a malformed message")
        }
        let recipient = state.withLock { state -> Session? in
            let session = state.sessions[envelope.user]
            switch envelope.effect {
            case .none:
                break
            case .update(let call):
                if session != nil { state.book.restore(call) }
            case .end(let callId):
                if let call = state.book.remove(callId: callId) { state.cancelTimers(of: call) }
            }
            if session != nil, !message.from.isEmpty { state.routes[message.from] = envelope.origin }
            return session
        }
        if let recipient {
            recipient.outlet.deliver(message)
        } else if bounces, envelope.origin != nodeId {
            var bounce = envelope
            bounce.kind = .bounce
            bounce.origin = nodeId
            bounce.incarnation = incarnation
            outbox.publish(bounce.encoded(), to: envelope.origin, on: eventLoop) { _, _ in }  // the origin is gone: nobody to tell
        }
    }

    /// A node this one published to does not have the user (any more): look again, once.
    private func redeliver(_ bounce: Envelope) {
        guard let message = try? ChatMessage(serializedBytes: Array(bounce.message.readableBytesView)) else { return }
        let user = bounce.user
        // Only a client's own messages and in-call signals are worth a notice; transitions and server notices
        // find their recipient through the reconnect grace.
        let notify = state.withLock { state -> Session? in
            if state.routes[user] == bounce.origin { state.routes[user] = nil }
            guard case .none = bounce.effect, !message.from.isEmpty else { return nil }
            return state.sessions[message.from]
        }
        if bounce.isRetry {
            if let notify { reply(notify, .error(.offline, message: "\(user) is offline")) }
            return
        }
        lookAgain(message, for: user, notFrom: bounce.origin, effect: bounce.effect, notify: notify)
    }

    /// `user` was not reached at `staleNode`: looks them up again and sends once more, or tells `notify`.
    private func lookAgain(_ message: ChatMessage, for user: String, notFrom staleNode: String, effect: CallEffect, notify: Session?) {
        scripts.lookup(user).whenComplete { [self] result in
            switch result {
            case .success(let node?) where node == nodeId:
                _ = forward(message, to: user, effect: effect, notify: notify)
            case .success(let node?) where node != staleNode:
                state.withLock { $0.routes[user] = node }
                publish(message, to: user, at: node, effect: effect, notify: notify, isRetry: true)
            case .success(.some):
                if let notify { unreachable(notify, user) }
            case .success(nil):
                if let notify { reply(notify, .error(.offline, message: "\(user) is offline")) }
            case .failure:
                if let notify { unreachable(notify, user) }
            }
        }
    }
}
