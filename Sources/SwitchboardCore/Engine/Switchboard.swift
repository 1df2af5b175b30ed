import Logging
import SwitchboardProto
import Synchronization

/// The node's domain logic, in both modes: who is connected, the calls between them, and what each
/// incoming message does (PROTOCOL.md §2–§6). Every call rule is written here, once.
///
/// - Sessions are this node's. With ``ClusterPorts``, cluster-wide presence says where everyone else is,
///   the shared ``CallStore`` decides every transition atomically, and messages for users elsewhere go
///   through ``RemoteDelivery``. Without, the node is alone: presence is its sessions, calls are decided
///   in-process.
/// - ``local`` holds the calls of this node's users: the whole store on a single node, a copy of what
///   the shared store decided in cluster mode, so that offers, answers and ICE candidates are checked and
///   routed with no round trip. While the shared store is unreachable, calls between users of this node
///   go on there (and are written back when it returns).
/// - Each session's messages take effect in order: in cluster mode, while one waits for an answer, later
///   ones queue (``SessionQueues``); alone, every answer comes at once.
///
/// The WebSocket and HTTP layers use it directly. Every method is safe to call from any thread (connections
/// on any event loop call in concurrently) and never blocks; work that waits for the cluster completes
/// later. State changes happen under one short lock; effects (socket writes, records, log lines) follow
/// it. Lock order: the local store's lock may be held when the state's is taken (its presence is the
/// state's sessions), never the other way round.
package final class Switchboard: Sendable {
    struct State: Sendable {
        var sessions: [String: Session] = [:]
        var queues = SessionQueues(capacity: Switchboard.queueCapacity, capacityBytes: Switchboard.queueCapacityBytes)
        /// The node of users elsewhere, as last learned (dropped when a node says the user is not there).
        var routes: [String: String] = [:]
        var ringTimers: [String: any ScheduledTimer] = [:]
        var graceTimers: [String: any ScheduledTimer] = [:]
        var inviteBuckets: [String: TokenBucket] = [:]
        /// The sessions whose user's kept signals are being fetched (PROTOCOL.md §8): what arrives for
        /// them waits behind those, in ``resumeQueues``.
        var resuming: Set<UInt64> = []
        /// What arrived for sessions that are resuming, by user.
        var resumeQueues: [String: KeptQueue] = [:]
        var nextSessionID: UInt64 = 1
    }

    /// The state, in a box of its own so that the local store's presence can read it.
    final class StateBox: Sendable {
        let mutex = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { mutex.withLock { body(&$0) } }
    }

    package let settings: SwitchboardSettings
    /// What this engine counts; the server also counts the notices it sends itself here.
    package let metrics: SignalingMetrics
    let state = StateBox()
    /// The calls of this node's users (see the type's documentation).
    let local: InProcessCallStore
    /// Signals kept for users away from their call on a single node (the cluster's are ``ClusterPorts/kept``).
    let localKept: InProcessKeptSignals
    /// Presence, calls and delivery shared with other nodes; `nil` on a single node.
    let cluster: ClusterPorts?
    let scheduler: any TimerScheduler
    let records: any CallRecordSink
    let events: any CallEventSink
    /// The app's backend's say on each invite (`hooks.invite_url`); `nil`: every invite may ring.
    let permission: (any InvitePermission)?
    /// Who blocked whom on a single node (the cluster's list is ``ClusterPorts/blocks``).
    let localBlocks: InProcessBlockList
    /// Whether a session's messages may have to wait for an answer: in cluster mode, or for the invite
    /// permission hook.
    let queuesMessages: Bool
    /// The engine's clock (unix ms for records and stamps, monotonic for budgets).
    package let clock: SwitchboardClock
    let logger: Logger

    /// Questions to the ports whose answers have not been handled yet.
    let pending = PendingAnswers()

    /// How many messages of one session may wait for an answer.
    static let queueCapacity = 1024
    /// How many bytes of them (one message of any size always may).
    static let queueCapacityBytes = 8 << 20

    /// An engine with no sessions yet; alone, or part of a cluster through `cluster`. Records go to
    /// `records` and are counted in `metrics` first (as are relays, signals and notices). Invites ring
    /// only once `permission` allows them; alone, each user's block list holds at most
    /// `maxBlocksPerUser` users.
    package init(
        settings: SwitchboardSettings,
        cluster: ClusterPorts? = nil,
        scheduler: any TimerScheduler,
        records: any CallRecordSink,
        events: any CallEventSink,
        permission: (any InvitePermission)? = nil,
        maxBlocksPerUser: Int = 1000,
        clock: SwitchboardClock = .system,
        metrics: SignalingMetrics = SignalingMetrics(),
        logger: Logger = Logger(label: "switchboard")
    ) {
        self.settings = settings
        self.cluster = cluster
        self.scheduler = scheduler
        self.records = metrics.metering(records)
        self.metrics = metrics
        self.events = events
        self.permission = permission
        self.localBlocks = InProcessBlockList(maxPerUser: maxBlocksPerUser)
        self.queuesMessages = cluster != nil || permission != nil
        self.clock = clock
        self.logger = logger
        let state = self.state
        let nodeId = settings.nodeId
        let whereIs: @Sendable (String) -> String? = { user in state.withLock { $0.sessions[user] != nil } ? nodeId : nil }
        let local = InProcessCallStore(whereIs: whereIs)
        self.local = local
        self.localKept = InProcessKeptSignals(
            grace: settings.reconnectGrace,
            clock: clock,
            whereIs: whereIs,
            callOf: { local.call(of: $0) }
        )
    }

    package var nodeId: String { settings.nodeId }
    package var sessionCount: Int { state.withLock { $0.sessions.count } }
    package var callCount: Int { local.count }
    /// Every connected session (for shutdown).
    package var sessions: [Session] { state.withLock { Array($0.sessions.values) } }

    // MARK: Sessions

    /// Registers a new connection for `identity`; an older connection of the same user (on any node) is
    /// told `session-replaced` and closed with 4001. `whenReachable` runs once messages from anywhere
    /// reach the session: at once on a single node, after presence has it in cluster mode (or could not
    /// be asked); until then what the session sends waits.
    package func connect(
        _ identity: UserIdentity,
        connection: ConnectionInfo,
        outlet: any SessionOutlet,
        whenReachable: @escaping @Sendable () -> Void
    ) -> Session {
        let user = identity.id
        let (session, replaced) = state.withLock { state -> (Session, Session?) in
            let session = Session(id: state.nextSessionID, identity: identity, connection: connection, outlet: outlet)
            // What arrives for it waits behind what was kept for it (resumeSignals).
            state.resuming.insert(session.id)
            state.nextSessionID += 1
            let replaced = state.sessions.updateValue(session, forKey: user)
            if let replaced { state.forget(replaced) }
            state.graceTimers.removeValue(forKey: user)?.cancel()
            state.routes[user] = nil
            // Nothing the user sends overtakes their arrival in the cluster.
            if cluster != nil { state.queues.hold(session.id) }
            return (session, replaced)
        }
        if let replaced { closeReplaced(replaced) }
        guard let cluster else {
            resumeSignals(of: session, replacedLive: replaced != nil)
            whenReachable()
            return session
        }
        let answer = pending.begin()
        cluster.presence.register(user, now: clock.nowMilliseconds()) { [self] result in
            defer { answer.end() }
            var replacedLive = replaced != nil
            switch result {
            case .success(let registration):
                if let call = registration.call, state.withLock({ $0.isCurrent(session) }) { local.cache(call) }
                if let previous = registration.previousNode, previous != nodeId { cluster.delivery.replace(user, at: previous) }
                replacedLive = replacedLive || registration.previousNode != nil
            case .failure(let error):
                // Registered again when the cluster is back (restoreAfterReconnect).
                logger.debug("presence not registered", metadata: ["user": "\(user)", "error": "\(error.description)"])
            }
            // Registered: new signals come straight here (and wait behind these).
            resumeSignals(of: session, replacedLive: replacedLive)
            whenReachable()
            resume(session)
        }
        return session
    }

    /// Registers a new connection for `identity` when nobody needs to know when it is reachable.
    package func connect(_ identity: UserIdentity, connection: ConnectionInfo, outlet: any SessionOutlet) -> Session {
        connect(identity, connection: connection, outlet: outlet, whenReachable: {})
    }

    /// Forgets a closed connection. A party of a call gets `calls.reconnect_grace` to come back.
    package func disconnect(_ session: Session) {
        let user = session.user
        let call = local.call(of: user)
        let (wasCurrent, waiting) = state.withLock { state -> (Bool, [ChatMessage]) in
            guard state.isCurrent(session) else { return (false, []) }  // replaced meanwhile
            state.sessions[user] = nil
            state.forget(session)
            let waiting = state.resumeQueues.removeValue(forKey: user).map { Array($0.messages) } ?? []
            if state.inviteBuckets[user]?.isFull(now: clock.monotonicNanoseconds()) == true {
                state.inviteBuckets[user] = nil
            }
            if call != nil { startGrace(for: user, in: &state) }
            return (true, waiting)
        }
        if wasCurrent, let cluster {
            let answer = pending.begin()
            cluster.presence.unregister(user, now: clock.nowMilliseconds()) { answer.end() }
        }
        if wasCurrent, let call { markAway(user, callId: call.id) }
        // It closed while resuming: what waited for it is kept, or reported, as for anyone away.
        for message in waiting { forward(message, to: user) }
    }

    /// The node `user` is connected to, or `nil` when offline.
    package func presence(of user: String) async throws -> String? {
        if state.withLock({ $0.sessions[user] != nil }) { return nodeId }
        guard let cluster else { return nil }
        return try await withCheckedThrowingContinuation { continuation in
            cluster.presence.lookup(user) { continuation.resume(with: $0) }
        }
    }

    /// Whether the node can serve: always alone; in cluster mode, while the cluster's backend is reachable.
    package var isReady: Bool { cluster?.isReady() ?? true }

    /// How many questions to the cluster (presence, calls) wait for an answer; 0 on a single node. With
    /// every user on this node, the engine is quiet once it is 0 (tests wait for that).
    package var pendingAnswerCount: Int { pending.count }
    /// How many questions to the cluster were answered since the engine started.
    package var answeredCount: Int { pending.answeredCount }

    // MARK: Messages

    /// Handles one decoded message from `session`: relays it, or answers with a notice. Messages of one
    /// session take effect in the order they arrive.
    package func receive(_ message: ChatMessage, from session: Session) {
        guard queuesMessages else {
            // Alone, every answer comes at once: nothing ever waits, so no queue. Whether the session is
            // still current is checked where the message takes effect, under the lock it takes anyway.
            handle(message, from: session)
            return
        }
        let admission = state.withLock { state -> SessionQueues.Admission? in
            state.isCurrent(session) ? state.queues.admit(message, of: session.id) : nil
        }
        switch admission {
        case nil, .queued?:
            return  // a replaced session's last words are not acted on
        case .full?:
            reply(session, .error(.rateLimited, message: "too many messages waiting for the cluster"))
        case .handleNow?:
            handle(message, from: session)
        }
    }

    /// Handles one message of `session`: `false` when it went on to wait (``hold(_:)``), to finish later
    /// and then ``resume(_:)`` the session.
    @discardableResult
    func handle(_ message: consuming ChatMessage, from session: Session) -> Bool {
        let now = clock.nowMilliseconds()
        switch (consume message).intake(from: session.identity, now: now) {
        case .refused(let notice):
            reply(session, notice)
            return true
        case .plain(let message):
            let refuse: @Sendable () -> Void = { [self] in
                reply(session, .error(.forbidden, message: "\(message.to) does not take messages from you"))
            }
            return unlessBlocked(message.to, from: session, refuse: refuse) { [self] in
                forward(message, to: message.to, from: session, notify: session, holding: session)
            }
        case .signal(let signal, let message):
            metrics.signal(signal.type)
            return handle(signal, in: message, from: session, now: now)
        }
    }

    /// Makes `session`'s later messages wait: the one being handled waits for an answer (in cluster
    /// mode; alone, answers come at once).
    func hold(_ session: Session) {
        guard cluster != nil else { return }
        state.withLock { $0.queues.hold(session.id) }
    }

    /// Handles what waited for `session`, until one must wait again or none is left.
    func resume(_ session: Session) {
        guard cluster != nil else { return }
        drain(session)
    }

    /// Handles what waited for `session` (in both modes), until one must wait again or none is left.
    func drain(_ session: Session) {
        while let next = state.withLock({ $0.isCurrent(session) ? $0.queues.next(of: session.id) : nil }) {
            guard handle(next, from: session) else { return }
        }
    }

    // MARK: Replies

    /// Tells a session that a newer one took over and closes it with 4001.
    func closeReplaced(_ session: Session) {
        session.outlet.deliver(Notice.sessionReplaced.message(to: session.user, now: clock.nowMilliseconds()))
        session.outlet.close(code: CloseCode.sessionReplaced, reason: "session replaced")
    }

    /// Sends `notice` to `session`'s user, counted first.
    func reply(_ session: Session, _ notice: Notice) {
        metrics.notice(notice)
        session.outlet.deliver(notice.message(to: session.user, now: clock.nowMilliseconds()))
    }

    func log(_ name: CallEvent.Name, _ call: Call, _ session: Session?, level: String = "info", reason: String? = nil) {
        events.emit(
            CallEvent(
                name,
                level: level,
                caller: call.caller,
                callee: call.callee,
                callId: call.id,
                reason: reason,
                connection: session?.connection
            )
        )
    }
}

extension Switchboard.State {
    /// Whether `session` is still its user's live session on this node (not replaced by a newer one).
    func isCurrent(_ session: Session) -> Bool {
        sessions[session.user] === session
    }

    /// Whether what arrives for `session` must wait behind its kept signals.
    func isResuming(_ session: Session) -> Bool {
        !resuming.isEmpty && resuming.contains(session.id)
    }

    /// Drops what is held for a session that is no longer its user's (closed or replaced).
    mutating func forget(_ session: Session) {
        queues.remove(session.id)
        resuming.remove(session.id)
    }

    /// Cancels an ended call's ring timer and both parties' reconnect grace.
    mutating func cancelTimers(of call: Call) {
        ringTimers.removeValue(forKey: call.id)?.cancel()
        graceTimers.removeValue(forKey: call.caller)?.cancel()
        graceTimers.removeValue(forKey: call.callee)?.cancel()
    }
}

/// Counts questions to the ports until their answers have been handled.
final class PendingAnswers: Sendable {
    private let value = Atomic<Int>(0)
    /// How many were answered, ever (an answer may ask again: tests settle once this stands still).
    private let answered = Atomic<Int>(0)

    /// One question more; end the returned answer once it has been handled.
    func begin() -> Answer {
        value.add(1, ordering: .relaxed)
        return Answer(counter: self)
    }

    var count: Int { value.load(ordering: .acquiring) }
    var answeredCount: Int { answered.load(ordering: .acquiring) }

    /// One question's answer, to end once handled.
    struct Answer: Sendable {
        fileprivate let counter: PendingAnswers
        func end() {
            counter.answered.add(1, ordering: .relaxed)
            counter.value.subtract(1, ordering: .releasing)
        }
    }
}
