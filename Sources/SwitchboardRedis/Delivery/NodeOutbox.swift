import DequeModule
import NIOCore
import NIOPosix
import RedisWire
import Synchronization

/// Publishes envelopes to other nodes' inboxes, in order per destination, and never loses one silently.
///
/// `PUBLISH` answers how many subscribers received the message. 0 means the destination's subscriber is
/// away (reconnecting, or the node died): the outbox then holds that envelope and every later one for the
/// same node, and publishes them again, in order, every `retryInterval` until they are received or
/// `retryWindow` has passed since the first failure, or the node is no longer alive in `webrtc:nodes`;
/// then each one's `onFailure` runs (the sender looks the recipient up again, or is told).
/// A command error (Redis unreachable) fails the envelope at once.
///
/// A `PUBLISH` that reached the subscriber's socket buffer can still be lost with that connection; the
/// receiver sees the gap in the numbers and asks for it again (``replay(to:from:through:)``): the last
/// `replayCapacity` parcels per destination that Redis counted as received are kept for that.
final class NodeOutbox: Sendable {
    /// One envelope on its way, and what to do if it cannot be delivered.
    struct Parcel: Sendable {
        var payload: ByteBuffer
        /// Its number in the stream to its destination: the order to keep.
        var sequence: UInt64 = 0
        var onFailure: @Sendable (OutboxFailure) -> Void
        /// When the parcel first found no receiver (monotonic ns); `nil` before.
        var firstMissed: UInt64? = nil
    }

    private struct Destination {
        /// Parcels that found no receiver, in publish order, to send again.
        var held = Deque<Parcel>()
        /// Whether a retry is scheduled; while held is not empty, new parcels are held too.
        var retryScheduled = false
    }

    /// The last parcels published to one node, oldest first, for ``replay(to:from:through:)``.
    private struct Recent {
        var parcels = Deque<Parcel>()
    }

    private let redis: any RedisCommandSender
    private let channel: @Sendable (String) -> String
    private let nodesKey: String
    private let retryInterval: TimeAmount
    private let retryWindow: UInt64
    private let eventLoop: any EventLoop
    private let destinations = Mutex<[String: Destination]>([:])
    /// Parcels published during the current tick of each event loop, sent at its end.
    private let ticks = Mutex<[ObjectIdentifier: [(node: String, parcel: Parcel)]]>([:])
    /// The next sequence number per destination node.
    private let sequences = Mutex<[String: UInt64]>([:])
    private let recent = Mutex<[String: Recent]>([:])
    private let replayCapacity: Int

    /// - Parameters:
    ///   - channel: the inbox channel of a node id.
    ///   - nodesKey: the sorted set of node heartbeats (a node missing there, or at 0, is gone).
    ///   - eventLoop: where retries are scheduled.
    init(
        redis: any RedisCommandSender,
        nodesKey: String,
        eventLoop: any EventLoop,
        retryInterval: Duration = .milliseconds(100),
        retryWindow: Duration = .seconds(2),
        replayCapacity: Int = 4096,
        channel: @escaping @Sendable (String) -> String
    ) {
        self.replayCapacity = replayCapacity
        self.redis = redis
        self.eventLoop = eventLoop
        self.retryInterval = TimeAmount(retryInterval)
        self.retryWindow = UInt64(retryWindow.components.seconds) * 1_000_000_000
            + UInt64(retryWindow.components.attoseconds / 1_000_000_000)
        self.channel = channel
        self.nodesKey = nodesKey
    }

    /// Publishes an encoded ``Envelope`` to `node`'s inbox after everything published to it before,
    /// numbered in that order (the receiver's ``InboxSequencer`` restores it after a retry).
    ///
    /// On an event loop, what one tick publishes goes to Redis as one pipelined batch at the end of the
    /// tick (a read burst of many sockets costs Redis one read, not one per message).
    func publish(_ envelope: ByteBuffer, to node: String, onFailure: @escaping @Sendable (OutboxFailure) -> Void) {
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
        // Numbered and sent under the lock: the connection's command order is then the order of parcels.
        let sent = destinations.withLock { destinations -> [(String, [Parcel], EventLoopFuture<RESPValue>)] in
            var outgoing: [String: [Parcel]] = [:]
            var nodes: [String] = []
            for (node, parcel) in batch {
                var parcel = parcel
                parcel.sequence = sequences.withLock { sequences in
                    defer { sequences[node, default: 0] += 1 }
                    return sequences[node, default: 0]
                }
                parcel.payload.setInteger(parcel.sequence, at: parcel.payload.readerIndex + Envelope.sequenceOffset)
                if destinations[node] != nil {
                    destinations[node]!.held.append(parcel)
                } else {
                    if outgoing[node] == nil { nodes.append(node) }
                    outgoing[node, default: []].append(parcel)
                }
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
        for (node, parcels, future) in sent {
            future.whenComplete { result in
                for parcel in parcels { self.settle(parcel, to: node, result: result) }
            }
        }
    }

    private func remember(_ parcel: Parcel, for node: String) {
        recent.withLock { recent in
            recent[node, default: Recent()].parcels.append(parcel)
            if recent[node]!.parcels.count > replayCapacity { recent[node]!.parcels.removeFirst() }
        }
    }

    /// Publishes again, with their numbers, the parcels `first...last` to `node` that are still kept
    /// (the receiver lost them); returns how many. Parcels held for a retry are left to it.
    @discardableResult
    func replay(to node: String, from first: UInt64, through last: UInt64) -> Int {
        guard first <= last else { return 0 }
        let sent = destinations.withLock { destinations -> [(Parcel, EventLoopFuture<RESPValue>)] in
            let held = Set(destinations[node]?.held.map(\.sequence) ?? [])
            let lost = recent.withLock { recent in
                (recent[node]?.parcels ?? []).filter { (first...last).contains($0.sequence) && !held.contains($0.sequence) }
            }
            guard !lost.isEmpty else { return [] }
            let commands: [[RESPArgument]] = lost.map { ["PUBLISH", RESPArgument(channel(node)), RESPArgument($0.payload)] }
            return Array(zip(lost, redis.send(batch: commands)))
        }
        for (parcel, future) in sent {
            future.whenComplete { self.settle(parcel, to: node, result: $0) }
        }
        return sent.count
    }

    private func settle(_ parcel: Parcel, to node: String, result: Result<RESPValue, any Error>) {
        switch result {
        case .success(let reply) where (reply.integer ?? 0) > 0:
            // Received, as far as Redis knows: kept for a replay. A parcel that failed never is (its
            // sender was told).
            remember(parcel, for: node)
        case .success:
            var parcel = parcel
            parcel.firstMissed = parcel.firstMissed ?? NIODeadline.now().uptimeNanoseconds
            let schedule = destinations.withLock { destinations -> Bool in
                // Parcels published after this one may be held already: keep publish order.
                var held = destinations[node, default: Destination()].held
                let index = held.lastIndex { $0.sequence < parcel.sequence }.map { held.index(after: $0) } ?? held.startIndex
                held.insert(parcel, at: index)
                destinations[node, default: Destination()].held = held
                guard !destinations[node]!.retryScheduled else { return false }
                destinations[node]!.retryScheduled = true
                return true
            }
            if schedule {
                eventLoop.scheduleTask(in: retryInterval) { self.checkAndRetry(node) }
            }
        case .failure(let error):
            parcel.onFailure(.unreachable("\(error)"))
        }
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

    /// Publishes the held parcels again, in order; gives up on all of them once the oldest has waited
    /// past the retry window, or at once when the node is gone.
    private func retry(_ node: String, nodeIsGone: Bool) {
        let now = NIODeadline.now().uptimeNanoseconds
        let (expired, resent) = destinations.withLock {
            destinations -> ([Parcel], [(Parcel, EventLoopFuture<RESPValue>)]) in
            guard let held = destinations.removeValue(forKey: node)?.held,
                let oldest = held.compactMap(\.firstMissed).min()
            else {
                return ([], [])
            }
            if nodeIsGone || now - oldest > retryWindow { return (Array(held), []) }
            // Sent under the lock, before any newer parcel (see publish).
            return (
                [],
                held.map { parcel in
                    var parcel = parcel
                    parcel.firstMissed = parcel.firstMissed ?? oldest
                    return (parcel, redis.send(["PUBLISH", RESPArgument(channel(node)), RESPArgument(parcel.payload)]))
                }
            )
        }
        for parcel in expired { parcel.onFailure(.noReceiver) }
        for (parcel, future) in resent {
            future.whenComplete { self.settle(parcel, to: node, result: $0) }
        }
    }
}

/// Why an envelope could not be delivered.
enum OutboxFailure: Error, Sendable, Equatable {
    /// Nobody listened on the destination's inbox for the whole retry window.
    case noReceiver
    /// Redis did not take the command.
    case unreachable(String)
}
