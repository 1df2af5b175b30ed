import NIOCore
import NIOPosix
import RedisWire
import Synchronization

/// Publishes envelopes to other nodes' inboxes, in order per destination, and never loses one silently.
///
/// `PUBLISH` answers how many subscribers received the message. 0 means the destination's subscriber is
/// away (reconnecting, or the node died): the outbox then holds that envelope and every later one for the
/// same node, and publishes them again, in order, every `retryInterval` until they are received, or each
/// has been held for `limits.retryMaxAge`, or the node is no longer alive in `webrtc:nodes`; then each
/// one's `onFailure` runs (the sender looks the recipient up again, or is told).
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
/// Time is the event loop's (`eventLoop.now`), so a test's event loop can drive it.
final class NodeOutbox: Sendable {
    /// What runs when an envelope cannot be delivered: why, and the encoded envelope (the sender decodes
    /// what it needs from it, so that nothing else has to be kept alive with the parcel).
    typealias FailureHandler = @Sendable (_ failure: OutboxFailure, _ envelope: ByteBuffer) -> Void

    /// One envelope on its way, and what to do if it cannot be delivered.
    struct Parcel: Sendable {
        var payload: ByteBuffer
        /// Its number in the stream to its destination: the order to keep.
        var sequence: UInt64 = 0
        var onFailure: FailureHandler
        /// When the parcel was first held for a retry (monotonic ns); `nil` before. Its retry age counts
        /// from here.
        var firstHeld: UInt64? = nil
        /// Sent again because the receiver asked: kept for a replay already.
        var isReplay = false

        /// What keeping one parcel costs besides its bytes (the parcel, its closure's context, the
        /// buffer's header, a queue slot), counted so that many small parcels are bounded too.
        static let overhead = 256

        /// What the parcel counts against the limits.
        var cost: Int { payload.readableBytes + Self.overhead }

        func fail(_ failure: OutboxFailure) {
            onFailure(failure, payload)
        }
    }

    /// Everything about one destination node.
    fileprivate struct Destination {
        /// The next sequence number.
        var nextSequence: UInt64 = 0
        /// Sent and not answered yet: counted against the retry limits with `held`.
        var inFlight = BoundedParcelQueue<Parcel>.Usage()
        /// Parcels that found no receiver, or are queued behind one that did not, in publish order.
        var held: BoundedParcelQueue<Parcel>
        /// Whether a retry is scheduled; until it runs, new parcels are held too.
        var retryScheduled = false
        /// Parcels Redis counted as received, oldest first, for ``replay(to:from:through:)``.
        var recent: BoundedParcelQueue<Parcel>
        /// Whether a check for replay parcels past their age is scheduled.
        var pruneScheduled = false

        init(limits: ClusterBufferLimits) {
            held = BoundedParcelQueue(limits: limits.retry)
            recent = BoundedParcelQueue(limits: limits.replay)
        }
    }

    private let redis: any RedisCommandSender
    private let channel: @Sendable (String) -> String
    private let nodesKey: String
    private let retryInterval: TimeAmount
    private let eventLoop: any EventLoop
    /// The bounds per destination.
    let limits: ClusterBufferLimits
    private let destinations = Mutex<[String: Destination]>([:])
    /// Parcels published during the current tick of each event loop, sent at its end.
    private let ticks = Mutex<[ObjectIdentifier: [(node: String, parcel: Parcel)]]>([:])

    /// - Parameters:
    ///   - nodesKey: the sorted set of node heartbeats (a node missing there, or at 0, is gone).
    ///   - eventLoop: where retries and replay-age checks are scheduled, and whose clock is used.
    ///   - channel: the inbox channel of a node id.
    init(
        redis: any RedisCommandSender,
        nodesKey: String,
        eventLoop: any EventLoop,
        retryInterval: Duration = .milliseconds(100),
        limits: ClusterBufferLimits = .standard,
        channel: @escaping @Sendable (String) -> String
    ) {
        self.redis = redis
        self.eventLoop = eventLoop
        self.retryInterval = TimeAmount(retryInterval)
        self.limits = limits
        self.channel = channel
        self.nodesKey = nodesKey
    }

    private var now: UInt64 { eventLoop.now.uptimeNanoseconds }

    /// What the outbox keeps for `node` (in bytes as the limits count them): parcels in flight, held
    /// for a retry, and kept for a replay.
    func usage(of node: String) -> (inFlight: BoundedParcelQueue<Parcel>.Usage, held: BoundedParcelQueue<Parcel>.Usage,
                                    kept: BoundedParcelQueue<Parcel>.Usage) {
        destinations.withLock { destinations in
            let destination = destinations[node]
            return (destination?.inFlight ?? .init(), destination?.held.usage ?? .init(), destination?.recent.usage ?? .init())
        }
    }

    /// Publishes an encoded ``Envelope`` to `node`'s inbox after everything published to it before,
    /// numbered in that order (the receiver's ``InboxSequencer`` restores it after a retry).
    ///
    /// On an event loop, what one tick publishes goes to Redis as one pipelined batch at the end of the
    /// tick (a read burst of many sockets costs Redis one read, not one per message).
    func publish(_ envelope: ByteBuffer, to node: String, onFailure: @escaping FailureHandler) {
        let parcel = Parcel(payload: envelope, onFailure: onFailure)
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else {
            return send([(node, parcel)])
        }
        let isFirst = ticks.withLock { ticks -> Bool in
            let key = ObjectIdentifier(loop)
            let isFirst = ticks[key]?.isEmpty ?? true
            ticks[key, default: []].append((node, parcel))
            return isFirst
        }
        guard isFirst else { return }
        loop.execute {
            let batch = self.ticks.withLock { $0.removeValue(forKey: ObjectIdentifier(loop)) ?? [] }
            self.send(batch)
        }
    }

    /// Numbers and sends parcels (or holds those for a node whose inbox is away), in order: one
    /// `PUBLISH` per destination, of an ``EnvelopeBundle`` when there are several.
    private func send(_ batch: [(node: String, parcel: Parcel)]) {
        let now = self.now
        var givenUp: [Parcel] = []
        // Numbered and sent under the lock: the connection's command order is then the order of parcels.
        let sent = destinations.withLock { destinations -> [(String, [Parcel], EventLoopFuture<RESPValue>)] in
            var outgoing: [String: [Parcel]] = [:]
            var nodes: [String] = []
            for (node, parcel) in batch {
                let admitted = destinations[node, default: Destination(limits: limits)]
                    .admit(parcel, now: now, givenUp: &givenUp)
                guard let admitted else { continue }
                if outgoing[node] == nil { nodes.append(node) }
                outgoing[node, default: []].append(admitted)
            }
            guard !nodes.isEmpty else { return [] }
            let commands: [[RESPArgument]] = nodes.map { node in
                let parcels = outgoing[node]!
                let payload = parcels.count == 1 ? parcels[0].payload : EnvelopeBundle.encode(parcels.map(\.payload))
                return ["PUBLISH", RESPArgument(channel(node)), RESPArgument(payload)]
            }
            let futures = commands.count == 1 ? [redis.send(commands[0])] : redis.send(batch: commands)
            return zip(nodes, futures).map { ($0, outgoing[$0]!, $1) }
        }
        for parcel in givenUp { parcel.fail(.bufferFull) }
        for (node, parcels, future) in sent {
            future.whenComplete { result in
                for parcel in parcels { self.settle(parcel, to: node, result: result) }
            }
        }
    }

    /// Publishes again, with their numbers, the parcels `first...last` to `node` that are still kept
    /// (the receiver lost them); returns how many. Parcels held for a retry are left to it, and what
    /// does not fit beside the parcels in flight and held is not sent (the receiver then goes on
    /// without it, as for a parcel no longer kept).
    @discardableResult
    func replay(to node: String, from first: UInt64, through last: UInt64) -> Int {
        guard first <= last else { return 0 }
        let sent = destinations.withLock { destinations -> [(Parcel, EventLoopFuture<RESPValue>)] in
            guard let lost = destinations[node]?.takeForReplay(first...last), !lost.isEmpty else { return [] }
            let commands: [[RESPArgument]] = lost.map { ["PUBLISH", RESPArgument(channel(node)), RESPArgument($0.payload)] }
            return Array(zip(lost, redis.send(batch: commands)))
        }
        for (parcel, future) in sent {
            future.whenComplete { self.settle(parcel, to: node, result: $0) }
        }
        return sent.count
    }

    private func settle(_ parcel: Parcel, to node: String, result: Result<RESPValue, any Error>) {
        let now = self.now
        var failed: [(Parcel, OutboxFailure)] = []
        let (scheduleRetry, schedulePrune) = destinations.withLock { destinations -> (Bool, UInt64?) in
            destinations[node, default: Destination(limits: limits)].settle(parcel, result: result, now: now, failed: &failed)
        }
        for (parcel, failure) in failed { parcel.fail(failure) }
        if scheduleRetry {
            eventLoop.scheduleTask(in: retryInterval) { self.checkAndRetry(node) }
        }
        if let deadline = schedulePrune { scheduleReplayPrune(node, at: deadline) }
    }

    private func scheduleReplayPrune(_ node: String, at deadline: UInt64) {
        eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) { self.pruneReplay(node) }
    }

    /// Drops the replay parcels past their age; checks again when the oldest left will be.
    private func pruneReplay(_ node: String) {
        let now = self.now
        // The expired parcels are released after the lock, with the tuple.
        let (next, _) = destinations.withLock { destinations -> (UInt64?, [Parcel]) in
            destinations[node]?.pruneReplay(now: now) ?? (nil, [])
        }
        if let next { scheduleReplayPrune(node, at: next) }
    }

    /// Retries unless the node is gone from `webrtc:nodes` (reaped, or left).
    private func checkAndRetry(_ node: String) {
        redis.send(["ZSCORE", RESPArgument(nodesKey), RESPArgument(node)]).whenComplete { result in
            // Gone: no score (reaped) or 0 (left). A failed check is no verdict: publishing again
            // fails as unreachable if Redis is away.
            let reply = try? result.get()
            let score = reply?.string.flatMap(Double.init)
            self.retry(node, nodeIsGone: reply != nil && (score ?? 0) <= 0)
        }
    }

    /// Publishes the held parcels again, in order; gives up on those held past the retry age, or on
    /// all of them at once when the node is gone.
    private func retry(_ node: String, nodeIsGone: Bool) {
        let now = self.now
        let (expired, resent) = destinations.withLock {
            destinations -> ([Parcel], [(Parcel, EventLoopFuture<RESPValue>)]) in
            guard let taken = destinations[node]?.takeForRetry(nodeIsGone: nodeIsGone, now: now) else {
                return ([], [])
            }
            // Sent under the lock, before any newer parcel (see send).
            return (
                taken.expired,
                taken.again.map { ($0, redis.send(["PUBLISH", RESPArgument(channel(node)), RESPArgument($0.payload)])) }
            )
        }
        for parcel in expired { parcel.fail(.noReceiver) }
        for (parcel, future) in resent {
            future.whenComplete { self.settle(parcel, to: node, result: $0) }
        }
    }
}

extension NodeOutbox.Destination {
    /// Takes a new parcel: numbered and returned to be sent now, or held behind the parcels waiting
    /// for a retry (then `nil`). Held parcels given up on to make room go to `givenUp`, and so does the
    /// parcel itself, unnumbered, when it cannot fit at all.
    fileprivate mutating func admit(
        _ parcel: NodeOutbox.Parcel, now: UInt64, givenUp: inout [NodeOutbox.Parcel]
    ) -> NodeOutbox.Parcel? {
        let cost = parcel.cost
        guard let room = held.makeRoom(forBytes: cost, reserved: inFlight) else {
            givenUp.append(parcel)
            return nil
        }
        givenUp += room
        var parcel = parcel
        parcel.sequence = nextSequence
        nextSequence += 1
        parcel.payload.setInteger(parcel.sequence, at: parcel.payload.readerIndex + Envelope.sequenceOffset)
        guard !retryScheduled else {
            parcel.firstHeld = now
            // There is room: nothing more gives way.
            givenUp += held.add(parcel, bytes: cost, since: now, reserved: inFlight) ?? [parcel]
            return nil
        }
        inFlight.add(cost)
        return parcel
    }

    /// The kept parcels numbered within `range` and not held for a retry, to be sent again (counted in
    /// flight), as many as fit beside those in flight and held.
    fileprivate mutating func takeForReplay(_ range: ClosedRange<UInt64>) -> [NodeOutbox.Parcel] {
        let held = Set(held.elements.map(\.sequence))
        var lost: [NodeOutbox.Parcel] = []
        for var parcel in recent.elements where range.contains(parcel.sequence) && !held.contains(parcel.sequence) {
            guard self.held.fits(bytes: parcel.cost, reserved: inFlight) else { break }
            inFlight.add(parcel.cost)
            parcel.isReplay = true
            lost.append(parcel)
        }
        return lost
    }

    /// The retry's turn: the held parcels past the retry age (all of them when the node is gone), to
    /// fail, and the others, to be sent again (counted in flight).
    fileprivate mutating func takeForRetry(
        nodeIsGone: Bool, now: UInt64
    ) -> (expired: [NodeOutbox.Parcel], again: [NodeOutbox.Parcel]) {
        retryScheduled = false
        let expired = nodeIsGone ? held.removeAll() : held.removeExpired(now: now)
        let again = held.removeAll()
        for parcel in again { inFlight.add(parcel.cost) }
        return (expired, again)
    }

    /// Drops the replay parcels past their age; returns when to check again (`nil`: none left) and what
    /// was dropped.
    fileprivate mutating func pruneReplay(now: UInt64) -> (next: UInt64?, expired: [NodeOutbox.Parcel]) {
        let expired = recent.removeExpired(now: now)
        guard let earliest = recent.earliest else {
            pruneScheduled = false
            return (nil, expired)
        }
        return (earliest + recent.limits.maxAgeNanoseconds, expired)
    }

    /// Takes the answer to a parcel sent: kept for a replay (received), held for a retry (no receiver),
    /// or failed (Redis did not take it). Returns whether a retry is to be scheduled, and the deadline of
    /// a replay-age check to schedule.
    fileprivate mutating func settle(
        _ parcel: NodeOutbox.Parcel, result: Result<RESPValue, any Error>, now: UInt64,
        failed: inout [(NodeOutbox.Parcel, OutboxFailure)]
    ) -> (retry: Bool, pruneAt: UInt64?) {
        let cost = parcel.cost
        inFlight.remove(cost)
        switch result {
        case .success(let reply) where (reply.integer ?? 0) > 0:
            // Received, as far as Redis knows: kept for a replay (a replayed one is kept already). A
            // parcel that failed never is (its sender was told).
            guard !parcel.isReplay, recent.add(parcel, bytes: cost, since: now) != nil, !pruneScheduled else {
                return (false, nil)
            }
            pruneScheduled = true
            return (false, (recent.earliest ?? now) + recent.limits.maxAgeNanoseconds)
        case .success:
            var parcel = parcel
            parcel.firstHeld = parcel.firstHeld ?? now
            // Parcels published after this one may be held already: keep publish order. It was counted
            // in flight, so it fits; the oldest held give way only if the limits say otherwise.
            let sequence = parcel.sequence
            let givenUp = held.add(parcel, bytes: cost, since: parcel.firstHeld!, reserved: inFlight) { $0.sequence < sequence }
            failed += (givenUp ?? [parcel]).map { ($0, .bufferFull) }
            guard !retryScheduled, !held.isEmpty else { return (false, nil) }
            retryScheduled = true
            return (true, nil)
        case .failure(let error):
            failed.append((parcel, .unreachable("\(error)")))
            return (false, nil)
        }
    }
}

/// Why an envelope could not be delivered.
enum OutboxFailure: Error, Sendable, Equatable {
    /// Nobody listened on the destination's inbox for the whole retry age.
    case noReceiver
    /// Redis did not take the command.
    case unreachable(String)
    /// What is held for the destination reached `redis.retry_max_bytes` or `retry_max_messages`: the
    /// oldest held envelope gave way to a newer one, or a new one did not fit beside those in flight.
    case bufferFull
}
