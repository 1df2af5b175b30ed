import Logging
import NIOCore
import RedisWire
import Synchronization
import SwitchboardCore
import SwitchboardProto

/// The node's domain logic in cluster mode: the same protocol as ``Switchboard``, with presence, call
/// state and delivery shared through Redis (PROTOCOL.md §6).
///
/// - Sessions are local; `webrtc:presence` says where every user is. Messages for a user of this node
///   are written directly; others are published to the recipient node's inbox (``NodeOutbox``).
/// - Call transitions (invite, accept, reject, hangup, timeouts) run as one atomic script each
///   (``CallScript``); this node mirrors the calls of its users in a ``CallBook`` so that offers,
///   answers and ICE candidates are checked and routed with no Redis round trip.
/// - Each session's messages take effect in order: while one waits for Redis, later ones queue in the
///   session's ``SessionLane``.
/// - While Redis is unreachable, users of this node still reach each other (calls between them live in
///   the mirror and are written back on reconnect); what needs another node gets `unavailable`.
public final class ClusterSwitchboard: SignalingEngine {
    struct State: Sendable {
        var sessions: [String: Session] = [:]
        var lanes: [UInt64: SessionLane] = [:]
        /// The calls of this node's users, as last known.
        var book = CallBook()
        /// The node of users elsewhere, as last learned (dropped when a node says the user is not there).
        var routes: [String: String] = [:]
        var ringTimers: [String: any ScheduledTimer] = [:]
        var graceTimers: [String: any ScheduledTimer] = [:]
        var inviteBuckets: [String: TokenBucket] = [:]
        var nextSessionID: UInt64 = 1
    }

    public let settings: SwitchboardSettings
    let scripts: ClusterScripts
    let outbox: NodeOutbox
    let sequencer: InboxSequencer
    /// Where delivery runs: the outbox batches what is published per tick of this loop and schedules its
    /// retries there; the inbox is sequenced there (its subscriber should run there too).
    let eventLoop: any EventLoop
    /// This run of the node: envelopes it sends are numbered within it.
    let incarnation = UInt64.random(in: 1...UInt64.max)
    let state = Mutex(State())
    let scheduler: any TimerScheduler
    let records: any CallRecordSink
    let events: any CallEventSink
    let clock: SwitchboardClock
    let logger: Logger
    /// The engine's counters (`/metrics`).
    public let metrics: SignalingMetrics
    private let readiness: @Sendable () -> Bool
    /// How many messages of one session may wait behind a Redis round trip.
    static let laneCapacity = 1024
    /// How many bytes of them (one message of any size always may).
    static let laneCapacityBytes = 8 << 20

    /// - Parameters:
    ///   - redis: the command connection (``RedisClient``).
    ///   - eventLoop: where delivery runs: publishes are batched per tick of it, retries and gap timers
    ///     are scheduled on it, and inbox envelopes are sequenced on it.
    ///   - bufferLimits: what is kept per other node for retries, replays and reordering.
    ///   - isReady: whether Redis is reachable (command and subscriber connections).
    public init(
        settings: SwitchboardSettings,
        keys: ClusterKeys,
        redis: any RedisCommandSender,
        eventLoop: any EventLoop,
        bufferLimits: ClusterBufferLimits = .standard,
        scheduler: any TimerScheduler,
        records: any CallRecordSink,
        events: any CallEventSink,
        clock: SwitchboardClock = .system,
        metrics: SignalingMetrics = SignalingMetrics(),
        logger: Logger,
        isReady: @escaping @Sendable () -> Bool
    ) {
        self.settings = settings
        self.scripts = ClusterScripts(redis: redis, keys: keys, node: settings.nodeId)
        self.outbox = NodeOutbox(
            redis: redis, nodesKey: keys.nodes, eventLoop: eventLoop, limits: bufferLimits, channel: keys.inbox
        )
        self.sequencer = InboxSequencer(
            gapTimeout: bufferLimits.gapTimeout, maxWaitingBytes: bufferLimits.reorderMaxBytes, eventLoop: eventLoop
        )
        self.eventLoop = eventLoop
        self.scheduler = scheduler
        self.records = metrics.metering(records)
        self.metrics = metrics
        self.events = events
        self.clock = clock
        self.logger = logger
        self.readiness = isReady
    }

    public var nodeId: String { settings.nodeId }
    /// How long Redis keeps a ringing call should every timer for it be lost.
    var ringTTL: Duration { settings.ringTimeout + .seconds(10) }
    public var isReady: Bool { readiness() }
    public var sessionCount: Int { state.withLock { $0.sessions.count } }
    public var callCount: Int { state.withLock { $0.book.count } }

    // MARK: Sessions

    public func connect(
        _ identity: UserIdentity,
        connection: ConnectionInfo,
        outlet: any SessionOutlet,
        whenReachable: @escaping @Sendable () -> Void
    ) -> Session {
        let user = identity.id
        let (session, lane, replaced) = state.withLock { state -> (Session, SessionLane, Session?) in
            let session = Session(id: state.nextSessionID, identity: identity, connection: connection, outlet: outlet)
            state.nextSessionID += 1
            let lane = SessionLane(capacity: Self.laneCapacity, capacityBytes: Self.laneCapacityBytes, startsBusy: true) { [weak self] message, resume in
                self?.handle(message, from: session, resume: resume) ?? true
            }
            state.lanes[session.id] = lane
            let replaced = state.sessions.updateValue(session, forKey: user)
            if let replaced { state.lanes[replaced.id] = nil }
            state.graceTimers.removeValue(forKey: user)?.cancel()
            state.routes[user] = nil
            return (session, lane, replaced)
        }
        if let replaced { closeReplaced(replaced) }
        scripts.register(user, now: clock.nowMilliseconds()).whenComplete { [self] result in
            switch result {
            case .success(let (previous, call)):
                if let call { state.withLock { if $0.isCurrent(session) { $0.book.restore(call) } } }
                if let previous {
                    let envelope = Envelope(kind: .replace, origin: nodeId, user: user, incarnation: incarnation)
                    outbox.publish(envelope.encoded(), to: previous, on: eventLoop) { _, _ in }  // a dead node has nothing to close
                }
            case .failure(let error):
                // Registered again when Redis is back (restoreAfterReconnect).
                logger.debug("presence not registered", metadata: ["user": "\(user)", "error": "\(error)"])
            }
            whenReachable()
            lane.resume()
        }
        return session
    }

    public func disconnect(_ session: Session) {
        let user = session.user
        let wasCurrent = state.withLock { state -> Bool in
            guard state.isCurrent(session) else { return false }  // replaced meanwhile
            state.sessions[user] = nil
            state.lanes[session.id] = nil
            if state.inviteBuckets[user]?.isFull(now: clock.monotonicNanoseconds()) == true {
                state.inviteBuckets[user] = nil
            }
            if state.book.call(of: user) != nil { startGrace(for: user, in: &state) }
            return true
        }
        if wasCurrent { _ = scripts.unregister(user, now: clock.nowMilliseconds()) }
    }

    public func presence(of user: String) async throws -> String? {
        if state.withLock({ $0.sessions[user] != nil }) { return nodeId }
        return try await scripts.lookup(user).get()
    }

    public func receive(_ message: ChatMessage, from session: Session) {
        guard let lane = state.withLock({ $0.isCurrent(session) ? $0.lanes[session.id] : nil }) else { return }
        if !lane.submit(message) {
            reply(session, .error(.rateLimited, message: "too many messages waiting for the cluster"))
        }
    }

    /// Handles one message of `session`, in its lane: `false` when it finishes later by calling `resume`.
    private func handle(_ message: ChatMessage, from session: Session, resume: @escaping @Sendable () -> Void) -> Bool {
        guard state.withLock({ $0.isCurrent(session) }) else { return true }  // a replaced session's last words
        let now = clock.nowMilliseconds()
        switch message.intake(from: session.identity, now: now) {
        case .refused(let notice):
            reply(session, notice)
            return true
        case .plain(let message):
            return forward(message, to: message.to, effect: .none, notify: session, resume: resume)
        case .signal(let signal, let message):
            metrics.signal(signal.type)
            return handle(signal, in: message, from: session, now: now, resume: resume)
        }
    }

    /// Tells a session that a newer one took over and closes it with 4001.
    func closeReplaced(_ session: Session) {
        session.outlet.deliver(Notice.sessionReplaced.message(to: session.user, now: clock.nowMilliseconds()))
        session.outlet.close(code: CloseCode.sessionReplaced, reason: "session replaced")
    }

    func reply(_ session: Session, _ notice: Notice) {
        metrics.notice(notice)
        session.outlet.deliver(notice.message(to: session.user, now: clock.nowMilliseconds()))
    }

    func log(_ name: CallEvent.Name, _ call: Call, _ session: Session?, level: String = "info", reason: String? = nil) {
        events.emit(
            CallEvent(name, level: level, caller: call.caller, callee: call.callee, callId: call.id, reason: reason,
                      connection: session?.connection)
        )
    }
}

extension ClusterSwitchboard.State {
    /// Whether `session` is still its user's live session on this node.
    func isCurrent(_ session: Session) -> Bool {
        sessions[session.user]?.id == session.id
    }

    /// Both parties of an ended call no longer need a reconnect grace.
    mutating func cancelTimers(of call: Call) {
        ringTimers.removeValue(forKey: call.id)?.cancel()
        graceTimers.removeValue(forKey: call.caller)?.cancel()
        graceTimers.removeValue(forKey: call.callee)?.cancel()
    }
}
