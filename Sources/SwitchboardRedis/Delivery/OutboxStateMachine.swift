import NIOCore
import SwitchboardBasics

/// Delivery to other nodes' inboxes as a pure value: one mutating method per event, each returning
/// the actions its driver, ``NodeOutbox``, performs in order (the shape of ``RedisConnectionStateMachine``
/// and of valkey-swift's channel handler state machine).
///
/// Every rule of ``NodeOutbox`` lives here, per destination node: the numbering (publish order), the
/// parcels held for a retry while the destination's inbox has no subscriber (in number order, behind
/// one that missed), those kept for a replay, and their bounds in bytes, count and age
/// (``ClusterBufferLimits``; the oldest held give way with ``OutboxFailure/bufferFull``). Time is passed
/// in with each event that needs it (monotonic nanoseconds), so nothing here reads a clock, touches
/// Redis or schedules a timer: those are actions.
///
/// A parcel is its bytes and its place in the stream, nothing else: a failure is reported with them
/// (``Action/fail(_:_:)``), and the driver's one handler decodes from the envelope whom to tell, so a
/// parcel kept for a replay holds no closure and no object of the sender's alive.
///
/// Generic over the key of the tick a publish is batched in (`Tick`: an event loop in the outbox, a
/// number in tests).
struct OutboxStateMachine<Tick: Hashable> {
    /// One envelope on its way to `node`.
    struct Parcel {
        /// The destination node.
        var node: String
        /// The encoded ``Envelope``; its sequence number is written in when it is numbered.
        var payload: ByteBuffer
        /// Its number in the stream to its destination: the order to keep.
        var sequence: UInt64 = 0
        /// When the parcel was first held for a retry; `nil` before. Its retry age counts from here.
        var firstHeld: UInt64? = nil
        /// Sent again because the receiver asked: kept for a replay already.
        var isReplay = false

        /// What keeping one parcel costs besides its bytes (the parcel, the buffer's header, a queue
        /// slot), counted so that many small parcels are bounded too.
        static var overhead: Int { 256 }

        /// What the parcel counts against the limits.
        var cost: Int { payload.readableBytes + Self.overhead }
    }

    typealias Usage = ParcelQueueUsage

    /// One `PUBLISH` to `node`'s inbox of `parcels` (not empty, all to one node). Its answer goes back
    /// with ``published(_:to:receivers:now:)`` or ``publishFailed(_:to:error:now:)``, with these `parcels`.
    struct Publish {
        var parcels: [Parcel]

        /// Where its parcels go (one destination per `PUBLISH`).
        var node: String { parcels[0].node }

        /// What is published: the envelope itself, or an ``EnvelopeBundle`` of them.
        var payload: ByteBuffer {
            // A closure, not a key path: a key path into this generic type is built at run time, each call.
            parcels.count == 1 ? parcels[0].payload : EnvelopeBundle.encode(parcels.lazy.map { $0.payload })
        }
    }

    /// What `webrtc:nodes` says of a destination, for its retry.
    enum Liveness: Sendable, Equatable {
        /// A live heartbeat.
        case alive
        /// No heartbeat (reaped) or 0 (left).
        case gone
        /// The check failed: no verdict, so the retry goes ahead (and fails as unreachable if Redis is
        /// away).
        case unknown
    }

    enum Action {
        /// Send these `PUBLISH`es, in order, as one pipelined batch, and answer each.
        case publish([Publish])
        /// Report that these parcels cannot be delivered, and why.
        case fail([Parcel], OutboxFailure)
        /// Call ``flush(_:now:)`` for `tick` at its end (its first publish was just batched).
        case flushAtEndOfTick(Tick)
        /// Call ``windowEnded(for:now:)`` for `node` at `at`.
        case scheduleWindowEnd(node: String, at: UInt64)
        /// Call ``retryTimerFired(for:)`` for `node` at `at`.
        case scheduleRetry(node: String, at: UInt64)
        /// Look `node` up in `webrtc:nodes`, and call ``livenessChecked(_:_:now:)`` with the verdict.
        case checkLiveness(node: String)
        /// Call ``pruneTimerFired(for:now:)`` for `node` at `at`.
        case schedulePrune(node: String, at: UInt64)
    }

    /// Everything about one destination node.
    fileprivate struct Destination {
        /// The next sequence number.
        var nextSequence: UInt64 = 0
        /// Sent and not answered yet: counted against the retry limits with `held`.
        var inFlight = Usage()
        /// Parcels that found no receiver, or are queued behind one that did not, in number order.
        var held: BoundedParcelQueue<Parcel>
        /// Whether a retry is scheduled; until it runs, new parcels are held too.
        var retryScheduled = false
        /// Parcels Redis counted as received, oldest first, for a replay.
        var recent: BoundedParcelQueue<Parcel>
        /// Whether a check for replay parcels past their age is scheduled.
        var pruneScheduled = false
        /// `PUBLISH`es sent and not answered yet.
        var publishesInFlight = 0
        /// Parcels numbered while a `PUBLISH` was in flight or within the publish window, in number order:
        /// they go together when it is answered and the window has ended (counted in flight meanwhile).
        var gathered: [Parcel] = []
        var gatheredBytes = 0
        /// When the last `PUBLISH` went: the publish window counts from there.
        var lastPublished: UInt64?
        /// Whether the end of the publish window is scheduled (the gathered parcels go then).
        var windowScheduled = false

        init(limits: ClusterBufferLimits) {
            held = BoundedParcelQueue(limits: limits.retry)
            recent = BoundedParcelQueue(limits: limits.replay)
        }
    }

    /// The bounds per destination.
    let limits: ClusterBufferLimits
    /// How long a held parcel waits before it is published again.
    let retryInterval: UInt64
    /// The least time between two `PUBLISH`es to a destination (0: none); what comes for it sooner
    /// gathers and goes at the end of the window, so a steady stream costs one `PUBLISH` per window.
    let publishWindow: UInt64
    private var destinations: [String: Destination] = [:]
    /// The most bytes of parcels that gather for a destination while its `PUBLISH` is in flight; past
    /// this they go in a `PUBLISH` of their own.
    static var maxGatheredBytes: Int { 64 << 10 }
    /// Parcels published during a tick, admitted and sent at its end: one batch per event loop that
    /// publishes (emptied, it is kept for that loop's next tick).
    private var ticks: [Tick: [Parcel]] = [:]

    init(limits: ClusterBufferLimits, retryInterval: Duration, publishWindow: Duration = .zero) {
        self.limits = limits
        self.retryInterval = UInt64(max(0, retryInterval.wholeNanoseconds))
        self.publishWindow = UInt64(max(0, publishWindow.wholeNanoseconds))
    }

    /// What is kept for `node` (in bytes as the limits count them): parcels in flight, held for a
    /// retry, and kept for a replay.
    func usage(of node: String) -> (inFlight: Usage, held: Usage, kept: Usage) {
        let destination = destinations[node]
        return (destination?.inFlight ?? Usage(), destination?.held.usage ?? Usage(), destination?.recent.usage ?? Usage())
    }

    // MARK: Events

    /// An encoded envelope is to be published to `node` during `tick`: batched until the tick ends
    /// (a read burst of many sockets costs Redis one `PUBLISH` per destination, not one per message).
    /// Numbered then, in the order published.
    mutating func publish(_ payload: ByteBuffer, to node: String, in tick: Tick) -> [Action] {
        let isFirst = ticks[tick]?.isEmpty ?? true
        ticks[tick, default: []].append(Parcel(node: node, payload: payload))
        return isFirst ? [.flushAtEndOfTick(tick)] : []
    }

    /// `tick` ended: its parcels are numbered and sent, one `PUBLISH` per destination, or held behind
    /// the parcels of a destination waiting for a retry. To make room, the oldest held ones give way; a
    /// parcel that cannot fit even so fails, unnumbered. For a destination whose last `PUBLISH` is not
    /// answered yet, or went less than the publish window ago, they gather, numbered, and go together
    /// with the answer or at the window's end, whichever is later: a steady stream of messages then
    /// costs Redis, and the receiving node, one `PUBLISH` per round trip or window rather than one per
    /// message. The first message after a quiet window goes at once.
    mutating func flush(_ tick: Tick, now: UInt64) -> [Action] {
        guard var batch = ticks.removeValue(forKey: tick) else { return [] }
        var givenUp: [Parcel] = []
        // What goes now, one `PUBLISH` per destination, in the order of their first parcels; a tick has
        // few destinations.
        var publishes: [Publish] = []
        var windowEnds: [Action] = []
        // Taken out of the batch from the back, first to last: each parcel is then held once, and its
        // number is written into its bytes without a copy.
        batch.reverse()
        while let parcel = batch.popLast() {
            let node = parcel.node
            let admitted = destinations[node, default: Destination(limits: limits)]
                .admit(consume parcel, now: now, givenUp: &givenUp)
            guard let admitted else { continue }
            if let index = publishes.firstIndex(where: { $0.node == node }) {
                publishes[index].parcels.append(admitted)
            } else {
                switch destinations[node]!.gather(admitted, now: now, window: publishWindow) {
                case .send(let parcels): publishes.append(dispatch(parcels, to: node, now: now))
                case .gathered: break
                case .gatheredUntil(let end): windowEnds.append(.scheduleWindowEnd(node: node, at: end))
                }
            }
        }
        // The emptied batch stays for the next tick, unless a burst made it large.
        if batch.capacity <= Self.keptBatchCapacity { ticks[tick] = batch }
        var actions: [Action] = publishes.isEmpty ? [] : [.publish(publishes)]
        if !givenUp.isEmpty { actions.append(.fail(givenUp, .bufferFull)) }
        return actions + windowEnds
    }

    /// The most parcels a tick's emptied batch keeps room for between ticks.
    private static var keptBatchCapacity: Int { 64 }

    /// A `PUBLISH` of `parcels` to `node`, counted in flight until it is answered.
    private mutating func dispatch(_ parcels: [Parcel], to node: String, now: UInt64) -> Publish {
        destinations[node, default: Destination(limits: limits)].publishesInFlight += 1
        destinations[node]!.lastPublished = now
        return Publish(parcels: parcels)
    }

    /// `node`'s `PUBLISH` was answered: when none is in flight any more and the window has ended, what
    /// gathered meanwhile goes (or is held behind the parcels waiting for a retry).
    private mutating func answered(_ node: String, now: UInt64) -> [Action] {
        destinations[node]?.answered()
        return sendGathered(to: node, now: now)
    }

    /// The end of `node`'s publish window, scheduled by ``Action/scheduleWindowEnd(node:at:)``: what
    /// gathered goes, unless a `PUBLISH` is still in flight (then it goes with the answer).
    mutating func windowEnded(for node: String, now: UInt64) -> [Action] {
        destinations[node]?.windowScheduled = false
        return sendGathered(to: node, now: now)
    }

    /// What gathered for `node`, sent if nothing is in flight and the window has ended (else the end
    /// is scheduled), or held behind the parcels waiting for a retry.
    private mutating func sendGathered(to node: String, now: UInt64) -> [Action] {
        guard let next = destinations[node]?.takeGathered(now: now, window: publishWindow) else { return [] }
        switch next {
        case .gathered: return []
        case .gatheredUntil(let end): return [.scheduleWindowEnd(node: node, at: end)]
        case .send(let parcels) where destinations[node]!.retryScheduled:
            let (givenUp, _) = destinations[node]!.missed(parcels, now: now)
            return givenUp.isEmpty ? [] : [.fail(givenUp, .bufferFull)]
        case .send(let parcels): return [.publish([dispatch(parcels, to: node, now: now)])]
        }
    }

    /// A `PUBLISH` of `parcels` to `node` was answered: received by `receivers` subscribers. Received,
    /// they are kept for a replay (a replayed one is kept already); received by nobody, they are held
    /// for a retry in number order (behind the parcels held meanwhile that were published before them).
    mutating func published(_ parcels: [Parcel], to node: String, receivers: Int, now: UInt64) -> [Action] {
        guard receivers > 0 else {
            let (givenUp, startsRetry) = destinations[node, default: Destination(limits: limits)].missed(parcels, now: now)
            var actions: [Action] = givenUp.isEmpty ? [] : [.fail(givenUp, .bufferFull)]
            if startsRetry { actions.append(.scheduleRetry(node: node, at: now + retryInterval)) }
            return actions + answered(node, now: now)
        }
        let pruneAt = destinations[node, default: Destination(limits: limits)].received(parcels, now: now)
        let actions = answered(node, now: now)
        guard let pruneAt else { return actions }
        return [.schedulePrune(node: node, at: pruneAt)] + actions
    }

    /// A `PUBLISH` of `parcels` to `node` failed (Redis did not take it): they fail as unreachable.
    mutating func publishFailed(_ parcels: [Parcel], to node: String, error: String, now: UInt64) -> [Action] {
        destinations[node, default: Destination(limits: limits)].failed(parcels)
        return [.fail(parcels, .unreachable(error))] + answered(node, now: now)
    }

    /// The retry timer of `node` fired: first, whether the node is still alive.
    func retryTimerFired(for node: String) -> [Action] {
        [.checkLiveness(node: node)]
    }

    /// The liveness check of `node` answered: the held parcels are published again, in order, one
    /// `PUBLISH` each; those held for the retry age or longer fail, or all of them when the node is gone.
    mutating func livenessChecked(_ node: String, _ liveness: Liveness, now: UInt64) -> [Action] {
        guard let (expired, again) = destinations[node]?.takeForRetry(nodeIsGone: liveness == .gone, now: now) else {
            return []
        }
        var actions: [Action] = []
        if !again.isEmpty {
            actions.append(.publish(again.map { dispatch([$0], to: node, now: now) }))
        }
        if !expired.isEmpty { actions.append(.fail(expired, .noReceiver)) }
        return actions
    }

    /// `node` lost the parcels numbered `first...last`: those still kept are published again, with their
    /// numbers, one `PUBLISH` each. Parcels held for a retry are left to it, and what does not fit beside
    /// the parcels in flight and held is not sent (the receiver goes on without it, as for a parcel no
    /// longer kept).
    mutating func replay(to node: String, from first: UInt64, through last: UInt64, now: UInt64) -> [Action] {
        guard first <= last, let lost = destinations[node]?.takeForReplay(first...last), !lost.isEmpty else { return [] }
        return [.publish(lost.map { dispatch([$0], to: node, now: now) })]
    }

    /// The replay-age check of `node` is due: the parcels kept for the replay age or longer are dropped;
    /// another check is scheduled for when the oldest left will be.
    mutating func pruneTimerFired(for node: String, now: UInt64) -> [Action] {
        guard let next = destinations[node]?.pruneReplay(now: now) else { return [] }
        return [.schedulePrune(node: node, at: next)]
    }
}

extension OutboxStateMachine.Destination {
    typealias Parcel = OutboxStateMachine.Parcel

    /// Takes a new parcel: numbered and returned to be sent now, or held behind the parcels waiting
    /// for a retry (then `nil`). Held parcels given up on to make room go to `givenUp`, and so does the
    /// parcel itself, unnumbered, when it cannot fit at all.
    fileprivate mutating func admit(_ parcel: consuming Parcel, now: UInt64, givenUp: inout [Parcel]) -> Parcel? {
        var parcel = parcel  // moved: held once, its bytes take the number in place
        let cost = parcel.cost
        guard let room = held.makeRoom(forBytes: cost, reserved: inFlight) else {
            givenUp.append(parcel)
            return nil
        }
        if !room.isEmpty { givenUp += room }
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

    /// One `PUBLISH` was answered: no longer in flight.
    fileprivate mutating func answered() {
        publishesInFlight = max(0, publishesInFlight - 1)
    }

    /// What becomes of parcels numbered to be sent.
    fileprivate enum Gathering {
        /// They go now, in a `PUBLISH` of their own.
        case send([Parcel])
        /// They wait for the answer in flight, or for the window's end already scheduled.
        case gathered
        /// They wait for the window's end, at this time: to be scheduled.
        case gatheredUntil(UInt64)
    }

    /// A parcel numbered to be sent now: while a `PUBLISH` is in flight or within the publish window
    /// it gathers, unless the gathered bytes would pass ``OutboxStateMachine/maxGatheredBytes``: then
    /// they go with it, now, in a `PUBLISH` of their own.
    fileprivate mutating func gather(_ parcel: Parcel, now: UInt64, window: UInt64) -> Gathering {
        guard publishesInFlight > 0 || windowScheduled || isInWindow(now, window) else { return .send([parcel]) }
        gathered.append(parcel)
        gatheredBytes += parcel.payload.readableBytes
        if gatheredBytes > OutboxStateMachine.maxGatheredBytes { return .send(takeAllGathered()) }
        return publishesInFlight > 0 ? .gathered : scheduleWindowEnd(window)
    }

    /// The gathered parcels, when none is in flight and the window has ended; `nil` when none gathered.
    fileprivate mutating func takeGathered(now: UInt64, window: UInt64) -> Gathering? {
        guard !gathered.isEmpty else { return nil }
        guard publishesInFlight == 0 else { return .gathered }
        guard isInWindow(now, window) else { return .send(takeAllGathered()) }
        return scheduleWindowEnd(window)
    }

    /// Whether `now` is less than `window` after the last `PUBLISH` (never when the window is 0).
    private func isInWindow(_ now: UInt64, _ window: UInt64) -> Bool {
        guard let lastPublished, now >= lastPublished else { return false }
        return now - lastPublished < window
    }

    /// The window's end, to be scheduled unless it is already.
    private mutating func scheduleWindowEnd(_ window: UInt64) -> Gathering {
        guard !windowScheduled, let lastPublished else { return .gathered }
        windowScheduled = true
        return .gatheredUntil(lastPublished + window)
    }

    private mutating func takeAllGathered() -> [Parcel] {
        defer {
            gathered = []
            gatheredBytes = 0
        }
        return gathered
    }

    /// `parcels` were received, as far as Redis knows: kept for a replay (a replayed one is kept
    /// already). Returns when to check their age, unless a check is scheduled already.
    fileprivate mutating func received(_ parcels: [Parcel], now: UInt64) -> UInt64? {
        for parcel in parcels {
            inFlight.remove(parcel.cost)
            if !parcel.isReplay { recent.append(parcel, bytes: parcel.cost, since: now) }
        }
        guard !pruneScheduled, let earliest = recent.earliest else { return nil }
        pruneScheduled = true
        return earliest + recent.limits.maxAgeNanoseconds
    }

    /// `parcels` found no receiver: held for a retry in number order (parcels published after them may
    /// be held already). Each was counted in flight, so it fits; the oldest held give way only if the
    /// limits say otherwise. Returns those given up on (or a parcel itself, when it cannot be kept), and
    /// whether a retry is to be scheduled.
    fileprivate mutating func missed(_ parcels: [Parcel], now: UInt64) -> (givenUp: [Parcel], startsRetry: Bool) {
        var givenUp: [Parcel] = []
        for var parcel in parcels {
            inFlight.remove(parcel.cost)
            let since = parcel.firstHeld ?? now
            parcel.firstHeld = since
            let sequence = parcel.sequence
            givenUp +=
                held.add(parcel, bytes: parcel.cost, since: since, reserved: inFlight) { $0.sequence < sequence } ?? [parcel]
        }
        guard !retryScheduled, !held.isEmpty else { return (givenUp, false) }
        retryScheduled = true
        return (givenUp, true)
    }

    /// `parcels` were not taken by Redis: no longer in flight.
    fileprivate mutating func failed(_ parcels: [Parcel]) {
        for parcel in parcels { inFlight.remove(parcel.cost) }
    }

    /// The kept parcels numbered within `range` and not held for a retry, to be sent again (counted in
    /// flight), as many as fit beside those in flight and held.
    fileprivate mutating func takeForReplay(_ range: ClosedRange<UInt64>) -> [Parcel] {
        let held = Set(held.elements.map(\.sequence))
        var lost: [Parcel] = []
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
    fileprivate mutating func takeForRetry(nodeIsGone: Bool, now: UInt64) -> (expired: [Parcel], again: [Parcel]) {
        retryScheduled = false
        let expired = nodeIsGone ? held.removeAll() : held.removeExpired(now: now)
        let again = held.removeAll()
        for parcel in again { inFlight.add(parcel.cost) }
        return (expired, again)
    }

    /// Drops the replay parcels past their age; returns when to check again (`nil`: none left).
    fileprivate mutating func pruneReplay(now: UInt64) -> UInt64? {
        _ = recent.removeExpired(now: now)
        guard let earliest = recent.earliest else {
            pruneScheduled = false
            return nil
        }
        return earliest + recent.limits.maxAgeNanoseconds
    }
}

extension OutboxStateMachine.Parcel: Sendable {}
extension OutboxStateMachine.Publish: Sendable {}
extension OutboxStateMachine.Destination: Sendable {}
extension OutboxStateMachine.Action: Sendable where Tick: Sendable {}
extension OutboxStateMachine: Sendable where Tick: Sendable {}

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
