import Logging
import NIOCore
import RedisWire
import SwitchboardCore
import SwitchboardProto
import Synchronization

/// The cluster's ``RemoteDelivery``, both ways: envelopes to other nodes' inboxes through ``NodeOutbox``,
/// and what arrives in this node's inbox (in order, through ``InboxSequencer``) or on the channel every
/// node reads, handed to the engine.
///
/// Runs on one event loop (the subscriber's), so that inbox envelopes are sequenced where they arrive.
final class ClusterDelivery: RemoteDelivery {
    let nodeId: String
    let outbox: NodeOutbox
    let sequencer: InboxSequencer
    let eventLoop: any EventLoop
    let logger: Logger
    /// This run of the node: envelopes it sends are numbered within it.
    let incarnation = UInt64.random(in: 1...UInt64.max)
    /// The engine what arrives is for; set once, right after the engine is built on this delivery.
    private let engineBox = Mutex<Switchboard?>(nil)

    /// Delivery for node `nodeId` over `redis`, running on `eventLoop`, keeping within `limits` per other node.
    init(
        nodeId: String,
        redis: any RedisCommandSender,
        keys: ClusterKeys,
        eventLoop: any EventLoop,
        limits: ClusterBufferLimits,
        publishWindow: Duration = .zero,
        logger: Logger
    ) {
        self.nodeId = nodeId
        self.outbox = NodeOutbox(
            redis: redis,
            nodesKey: keys.nodes,
            eventLoop: eventLoop,
            publishWindow: publishWindow,
            limits: limits,
            channel: keys.inbox
        )
        self.sequencer = InboxSequencer(
            gapTimeout: limits.gapTimeout,
            maxWaitingBytes: limits.reorderMaxBytes,
            eventLoop: eventLoop
        )
        self.eventLoop = eventLoop
        self.logger = logger
        outbox.onFailure { [weak self] failure, node, envelope in self?.undelivered(envelope, at: node, failure) }
    }

    /// Hands what arrives to `engine` from now on.
    func deliver(to engine: Switchboard) {
        engineBox.withLock { $0 = engine }
    }

    private var engine: Switchboard? { engineBox.withLock { $0 } }

    // MARK: Out

    /// While the envelope is on its way only its encoded bytes are kept: should it fail, the engine is
    /// told with what is decoded again from them (``undelivered(_:at:_:)``).
    func send(_ message: ChatMessage, to user: String, at node: String, effect: CallEffect, isRetry: Bool) {
        guard let bytes = try? message.serializedBytes() as [UInt8] else {
            return  // proto3 messages without required fields always serialize
        }
        let envelope = Envelope(
            kind: .deliver,
            origin: nodeId,
            user: user,
            effect: effect,
            isRetry: isRetry,
            incarnation: incarnation
        )
        outbox.publish(envelope.encoded(messageBytes: bytes), to: node, on: eventLoop)
    }

    func replace(_ user: String, at node: String) {
        let envelope = Envelope(kind: .replace, origin: nodeId, user: user, incarnation: incarnation)
        outbox.publish(envelope.encoded(), to: node, on: eventLoop)
    }

    /// An envelope did not reach `node`: for a message, the engine is told. The other kinds need nobody
    /// told: a dead node has no session to close, a gone origin nothing to replay and nobody to bounce to.
    private func undelivered(_ bytes: ByteBuffer, at node: String, _ failure: OutboxFailure) {
        guard let envelope = try? Envelope(decoding: bytes), envelope.kind == .deliver else { return }
        engine?.undelivered(
            EnvelopeMessage.decode(envelope.message),
            for: envelope.user,
            at: node,
            effect: envelope.effect,
            isRetry: envelope.isRetry,
            because: RemoteDeliveryFailure(failure)
        )
    }

    // MARK: In

    /// Handles one bundle of envelopes from this node's inbox or, with `isBroadcast`, from the channel
    /// every node reads (where a recipient who is not here is someone else's). The subscriber calls it in
    /// order.
    func receive(_ payload: ByteBuffer, isBroadcast: Bool) {
        guard EnvelopeBundle.isBundle(payload) else { return receiveEnvelope(payload, isBroadcast: isBroadcast) }
        guard let envelopes = EnvelopeBundle.split(payload) else {
            return logger.warning("dropped a malformed cluster envelope bundle")
        }
        for bytes in envelopes { receiveEnvelope(bytes, isBroadcast: isBroadcast) }
    }

    private func receiveEnvelope(_ bytes: ByteBuffer, isBroadcast: Bool) {
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: bytes)
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

    /// The inbox's subscriber connected again: what was in flight to it may be lost, gap or not.
    func inboxReconnected() {
        for position in sequencer.positions { askForReplay(position, through: .max) }
    }

    /// Asks the origin of a stream to publish `position.expected...through` again.
    private func askForReplay(_ position: InboxSequencer.Position, through last: UInt64) {
        var range = ByteBuffer()
        range.writeInteger(position.incarnation)
        range.writeInteger(position.expected)
        range.writeInteger(last)
        let request = Envelope(kind: .replay, origin: nodeId, user: "", message: range, incarnation: incarnation)
        outbox.publish(request.encoded(), to: position.node, on: eventLoop)
    }

    private func handle(_ envelope: Envelope, isBroadcast: Bool) {
        switch envelope.kind {
        case .deliver:
            guard let message = EnvelopeMessage(envelope.message) else {
                return logger.warning("dropped a cluster envelope with a malformed message")
            }
            let delivered =
                engine?.deliverFromCluster(message, to: envelope.user, effect: envelope.effect, from: envelope.origin) ?? false
            if !delivered, !isBroadcast, envelope.origin != nodeId { bounce(envelope) }
        case .bounce:
            guard let message = decodedMessage(of: envelope) else { return }
            engine?.bounced(
                message,
                for: envelope.user,
                effect: envelope.effect,
                isRetry: envelope.isRetry,
                from: envelope.origin
            )
        case .replay:
            var range = envelope.message
            guard let incarnation = range.readInteger(as: UInt64.self), incarnation == self.incarnation,
                let first = range.readInteger(as: UInt64.self), let last = range.readInteger(as: UInt64.self)
            else { return }  // asked of an earlier run of this node: nothing kept
            outbox.replay(to: envelope.origin, from: first, through: last)
        case .replace:
            engine?.replacedElsewhere(envelope.user)
        }
    }

    /// Tells the origin that the recipient is not here.
    private func bounce(_ envelope: Envelope) {
        var bounce = envelope
        bounce.kind = .bounce
        bounce.origin = nodeId
        bounce.incarnation = incarnation
        outbox.publish(bounce.encoded(), to: envelope.origin, on: eventLoop)
    }

    private func decodedMessage(of envelope: Envelope) -> ChatMessage? {
        guard let message = EnvelopeMessage.decode(envelope.message) else {
            logger.warning("dropped a cluster envelope with a malformed message")
            return nil
        }
        return message
    }
}

extension RemoteDeliveryFailure {
    init(_ failure: OutboxFailure) {
        switch failure {
        case .noReceiver: self = .noReceiver
        case .unreachable: self = .unreachable
        case .bufferFull: self = .bufferFull
        }
    }
}
