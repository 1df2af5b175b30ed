import DequeModule
import NIOCore
import RedisWire
import Synchronization

/// Publishes envelopes to other nodes' inboxes, in order per destination, and never loses one silently.
///
/// `PUBLISH` answers how many subscribers received the message. 0 means the destination's subscriber is
/// away (reconnecting, or the node died): the outbox then holds that envelope and every later one for the
/// same node, and publishes them again, in order, every `retryInterval` until they are received, or each
/// has been held for `limits.retryMaxAge`, or the node is no longer alive in `webrtc:nodes`; then the
/// outbox's failure handler (``onFailure(_:)``) is given each one (the sender looks the recipient up
/// again, or is told).
/// A command error (Redis unreachable) fails the envelope at once.
///
/// What one destination costs is bounded (PROTOCOL.md §9): envelopes sent and not answered yet plus those
/// held count against `limits.retryMaxBytes` / `retryMaxMessages`. To make room, the oldest held ones
/// give way (``OutboxFailure/bufferFull``); a new envelope that cannot fit even so fails at once, before
/// it is numbered.
///
/// A `PUBLISH` that reached the subscriber's socket buffer can still be lost with that connection; the
/// receiver sees the gap in the numbers and asks for it again (``replay(to:from:through:)``): parcels
/// that Redis counted as received are kept for that, within `limits.replay*` (bytes, count, age: the
/// oldest go first, and the last ones go `replayMaxAge` after they came, also when nothing else is sent).
///
/// The rules are ``OutboxStateMachine``'s; this class is its driver. Each event (a publish, a tick's
/// end, a `PUBLISH` answered, a timer) goes to the state machine under one lock, with the time of the
/// event loop given at init (so a test's event loop drives it), and the actions it returns are then
/// performed outside the lock, in the order returned: by one caller at a time, so that `PUBLISH`es reach
/// the Redis connection in the order they were numbered, whichever thread's event produced them.
final class NodeOutbox: Sendable {
    /// What runs when an envelope cannot be delivered: why, its destination, and the encoded envelope
    /// (whom to tell is decoded from it, so that nothing else is kept alive with the parcel).
    typealias FailureHandler = @Sendable (_ failure: OutboxFailure, _ node: String, _ envelope: ByteBuffer) -> Void
    typealias StateMachine = OutboxStateMachine<LoopTick>
    /// One envelope on its way.
    typealias Parcel = StateMachine.Parcel

    /// The current tick of an event loop: what the parcels published during it are batched under.
    struct LoopTick: Hashable, Sendable {
        let loop: any EventLoop

        static func == (lhs: Self, rhs: Self) -> Bool { lhs.loop === rhs.loop }
        func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(loop)) }
    }

    private struct Locked {
        var machine: StateMachine
        /// Actions returned and not performed yet, in order.
        var pending = Deque<StateMachine.Action>()
        /// Whether a caller is performing `pending` (then others leave theirs to it).
        var isPerforming = false
        /// The inbox channel of each destination, made once (as many as the machine has destinations).
        var inboxes: [String: RESPArgument] = [:]
        /// Told of each envelope that cannot be delivered.
        var onFailure: FailureHandler = { _, _, _ in }
    }

    private let redis: any RedisCommandSender
    private let channel: @Sendable (String) -> String
    private let nodesKey: String
    /// Where retries and replay-age checks are scheduled; whose clock is used.
    let eventLoop: any EventLoop
    private let state: Mutex<Locked>

    /// - Parameters:
    ///   - nodesKey: the sorted set of node heartbeats (a node missing there, or at 0, is gone).
    ///   - eventLoop: where retries and replay-age checks are scheduled, and whose clock is used.
    ///   - publishWindow: the least time between two `PUBLISH`es to one node (`redis.publish_window`).
    ///   - channel: the inbox channel of a node id.
    init(
        redis: any RedisCommandSender,
        nodesKey: String,
        eventLoop: any EventLoop,
        retryInterval: Duration = .milliseconds(100),
        publishWindow: Duration = .zero,
        limits: ClusterBufferLimits = .standard,
        channel: @escaping @Sendable (String) -> String
    ) {
        self.redis = redis
        self.eventLoop = eventLoop
        self.channel = channel
        self.nodesKey = nodesKey
        self.state = Mutex(
            Locked(machine: StateMachine(limits: limits, retryInterval: retryInterval, publishWindow: publishWindow))
        )
    }

    private var now: UInt64 { eventLoop.now.uptimeNanoseconds }

    /// From now on, `handler` is told of each envelope that cannot be delivered (before, nobody is).
    func onFailure(_ handler: @escaping FailureHandler) {
        state.withLock { $0.onFailure = handler }
    }

    /// What the outbox keeps for `node` (in bytes as the limits count them): parcels in flight, held
    /// for a retry, and kept for a replay.
    func usage(of node: String) -> (inFlight: StateMachine.Usage, held: StateMachine.Usage, kept: StateMachine.Usage) {
        state.withLock { $0.machine.usage(of: node) }
    }

    /// Publishes an encoded ``Envelope`` to `node`'s inbox after everything published to it before,
    /// numbered in that order (the receiver's ``InboxSequencer`` restores it after a retry).
    ///
    /// What is published during one tick of `loop` goes to Redis as one pipelined batch when `loop`
    /// runs its next task (a read burst of many sockets costs Redis one read, not one per message).
    /// Called on `loop`, that is the end of the caller's tick; called elsewhere, the batch gathers what
    /// every thread publishes for `loop` until `loop` gets to it. While a `PUBLISH` to `node` waits for
    /// its answer, or within the publish window after the last `PUBLISH` to `node`, what follows for it
    /// gathers (at most 64 KiB) and goes as one bundle with the answer or at the window's end.
    func publish(_ envelope: ByteBuffer, to node: String, on loop: any EventLoop) {
        handle { $0.publish(envelope, to: node, in: LoopTick(loop: loop)) }
    }

    /// Publishes again, with their numbers, the parcels `first...last` to `node` that are still kept
    /// (the receiver lost them); returns how many. Parcels held for a retry are left to it, and what
    /// does not fit beside the parcels in flight and held is not sent (the receiver then goes on
    /// without it, as for a parcel no longer kept).
    @discardableResult
    func replay(to node: String, from first: UInt64, through last: UInt64) -> Int {
        var count = 0
        let now = self.now
        handle { machine in
            let actions = machine.replay(to: node, from: first, through: last, now: now)
            for case .publish(let publishes) in actions { count += publishes.count }
            return actions
        }
        return count
    }

    // MARK: Driving the state machine

    /// Gives the state machine one event, then performs what it returned, and whatever other callers
    /// left meanwhile, unless another caller is performing already (it performs these too, in order).
    private func handle(_ event: (inout StateMachine) -> [StateMachine.Action]) {
        let performs = state.withLock { locked -> Bool in
            let actions = event(&locked.machine)
            guard !actions.isEmpty else { return false }
            locked.pending.append(contentsOf: actions)
            guard !locked.isPerforming else { return false }
            locked.isPerforming = true
            return true
        }
        guard performs else { return }
        while let action = state.withLock({ locked -> StateMachine.Action? in
            guard let action = locked.pending.popFirst() else {
                locked.isPerforming = false
                return nil
            }
            return action
        }) {
            perform(action)
        }
    }

    private func perform(_ action: StateMachine.Action) {
        switch action {
        case .publish(let publishes):
            redis.send(batch: publishes.map(command(for:))) { index, result in self.answer(publishes[index], result) }
        case .fail(let parcels, let failure):
            let onFailure = state.withLock { $0.onFailure }
            for parcel in parcels { onFailure(failure, parcel.node, parcel.payload) }
        case .flushAtEndOfTick(let tick):
            tick.loop.execute {
                let now = self.now
                self.handle { $0.flush(tick, now: now) }
            }
        case .scheduleWindowEnd(let node, let deadline):
            eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                let now = self.now
                self.handle { $0.windowEnded(for: node, now: now) }
            }
        case .scheduleRetry(let node, let deadline):
            eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                self.handle { $0.retryTimerFired(for: node) }
            }
        case .checkLiveness(let node):
            redis.send(["ZSCORE", RESPArgument(nodesKey), RESPArgument(node)]).whenComplete { result in
                let now = self.now
                let liveness = Self.liveness(from: result)
                self.handle { $0.livenessChecked(node, liveness, now: now) }
            }
        case .schedulePrune(let node, let deadline):
            eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                let now = self.now
                self.handle { $0.pruneTimerFired(for: node, now: now) }
            }
        }
    }

    private func command(for publish: StateMachine.Publish) -> [RESPArgument] {
        let node = publish.node
        let inbox = state.withLock { locked in
            if let inbox = locked.inboxes[node] { return inbox }
            let inbox = RESPArgument(channel(node))
            locked.inboxes[node] = inbox
            return inbox
        }
        return ["PUBLISH", inbox, RESPArgument(publish.payload)]
    }

    private func answer(_ publish: StateMachine.Publish, _ result: Result<RESPValue, RedisError>) {
        switch result {
        case .success(let reply):
            let now = self.now
            let receivers = Int(clamping: reply.integer ?? 0)
            handle { $0.published(publish.parcels, to: publish.node, receivers: receivers, now: now) }
        case .failure(let error):
            let now = self.now
            handle { $0.publishFailed(publish.parcels, to: publish.node, error: "\(error)", now: now) }
        }
    }

    /// A node's score in `webrtc:nodes`: none (reaped) or 0 (left) is gone; a failed check is no verdict.
    private static func liveness(from result: Result<RESPValue, any Error>) -> StateMachine.Liveness {
        guard case .success(let reply) = result else { return .unknown }
        return (reply.string.flatMap(Double.init) ?? 0) <= 0 ? .gone : .alive
    }
}
