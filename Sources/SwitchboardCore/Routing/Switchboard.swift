import Synchronization
import SwitchboardProto

/// The node's domain logic in single-node mode: who is connected, the calls between them, and what each
/// incoming message does (PROTOCOL.md §2–§5).
///
/// Thread-safe: connections on any event loop call in concurrently. State changes happen under one short
/// lock; effects (socket writes, records, log lines) are performed after it is released.
public final class Switchboard: SignalingEngine {
    fileprivate struct State: Sendable {
        var sessions: [String: Session] = [:]
        var book = CallBook()
        var ringTimers: [String: any ScheduledTimer] = [:]
        var graceTimers: [String: any ScheduledTimer] = [:]
        var inviteBuckets: [String: TokenBucket] = [:]
        var nextSessionID: UInt64 = 1
    }

    public let settings: SwitchboardSettings
    /// What this engine counts; the server also counts the notices it sends itself here.
    public let metrics: SignalingMetrics
    private let state = Mutex(State())
    private let scheduler: any TimerScheduler
    private let records: any CallRecordSink
    private let events: any CallEventSink
    private let clock: SwitchboardClock

    /// An engine with no sessions yet. Records go to `records` and are counted in `metrics` first
    /// (as are relays, signals and notices); by default `metrics` uses the process's metrics factory.
    public init(
        settings: SwitchboardSettings,
        scheduler: any TimerScheduler,
        records: any CallRecordSink,
        events: any CallEventSink,
        clock: SwitchboardClock = .system,
        metrics: SignalingMetrics = SignalingMetrics()
    ) {
        self.settings = settings
        self.scheduler = scheduler
        self.records = metrics.metering(records)
        self.metrics = metrics
        self.events = events
        self.clock = clock
    }

    // MARK: Sessions

    /// Registers a new connection for `identity`; an older connection of the same user is told
    /// `session-replaced` and closed with 4001. The session is reachable when this returns.
    public func connect(
        _ identity: UserIdentity,
        connection: ConnectionInfo,
        outlet: any SessionOutlet,
        whenReachable: @escaping @Sendable () -> Void
    ) -> Session {
        let (session, replaced) = state.withLock { state -> (Session, Session?) in
            let session = Session(id: state.nextSessionID, identity: identity, connection: connection, outlet: outlet)
            state.nextSessionID += 1
            let replaced = state.sessions.updateValue(session, forKey: identity.id)
            state.graceTimers.removeValue(forKey: identity.id)?.cancel()
            return (session, replaced)
        }
        if let replaced {
            replaced.outlet.deliver(Notice.sessionReplaced.message(to: identity.id, now: clock.nowMilliseconds()))
            replaced.outlet.close(code: CloseCode.sessionReplaced, reason: "session replaced")
        }
        whenReachable()
        return session
    }

    /// Forgets a closed connection. A party of a call gets `calls.reconnect_grace` to come back.
    public func disconnect(_ session: Session) {
        state.withLock { state in
            guard state.sessions[session.user]?.id == session.id else { return }  // replaced meanwhile
            state.sessions[session.user] = nil
            if state.inviteBuckets[session.user]?.isFull(now: clock.monotonicNanoseconds()) == true {
                state.inviteBuckets[session.user] = nil
            }
            guard state.book.call(of: session.user) != nil else { return }
            let user = session.user
            state.graceTimers[user] = scheduler.schedule(after: settings.reconnectGrace) { [weak self] in
                self?.reconnectGraceExpired(for: user)
            }
        }
    }

    /// The node a user is connected to, or `nil` when offline.
    public func presence(of user: String) -> String? {
        state.withLock { $0.sessions[user] != nil } ? settings.nodeId : nil
    }

    public var nodeId: String { settings.nodeId }

    /// Always: a single node needs nothing else to serve.
    public var isReady: Bool { true }

    /// The number of connected users.
    public var sessionCount: Int { state.withLock { $0.sessions.count } }

    /// The number of calls ringing or active.
    public var callCount: Int { state.withLock { $0.book.count } }

    /// Every connected session (for shutdown).
    public var sessions: [Session] { state.withLock { Array($0.sessions.values) } }

    // MARK: Messages

    /// Handles one decoded message from `session`: relays it, or answers with a notice.
    public func receive(_ message: ChatMessage, from session: Session) {
        let now = clock.nowMilliseconds()
        switch message.intake(from: session.identity, now: now) {
        case .plain(let message):
            relayPlain(message, from: session, now: now)
        case .signal(let signal, let message):
            metrics.signal(signal.type)
            receive(signal, in: message, from: session, now: now)
        case .refused(let notice):
            reply(session, notice, now: now)
        }
    }

    private func relayPlain(_ message: ChatMessage, from session: Session, now: Int64) {
        let (isCurrent, recipient) = state.withLock { ($0.isCurrent(session), $0.sessions[message.to]) }
        guard isCurrent else { return }
        guard let recipient else {
            return reply(session, .error(.offline, message: "\(message.to) is offline"), now: now)
        }
        relay(message, to: recipient)
    }

    private func receive(_ signal: Signal, in message: ChatMessage, from session: Session, now: Int64) {
        if signal.type == .callInvite {
            return invite(signal, in: message, from: session, now: now)
        }
        let sender = session.user
        let outcome = state.withLock { state -> Result<(CallTransition, Session?), NoCall>? in
            guard state.isCurrent(session) else { return nil }
            return state.book.apply(signal.type, from: sender, to: message.to, callId: signal.callId, now: now).map {
                transition in
                switch transition {
                case .relayed:
                    break
                case .accepted(let call):
                    state.ringTimers.removeValue(forKey: call.id)?.cancel()
                    // Records and events are queued under the lock so they keep the order of transitions.
                    records.enqueue(call.record(status: .accepted, now: now))
                    log(.accept, call, session)
                case .ended(let call, let status):
                    state.ringTimers.removeValue(forKey: call.id)?.cancel()
                    state.cancelGrace(of: call)
                    let reason = signal.body["reason"]?.stringValue
                    records.enqueue(call.record(status: status, endedAt: now, endReason: reason ?? (status == .rejected ? "rejected" : "hangup"), now: now))
                    log(status == .rejected ? .reject : .hangup, call, session, reason: reason)
                }
                return (transition, state.sessions[message.to])
            }
        }
        let (transition, recipient): (CallTransition, Session?)
        switch outcome {
        case nil:
            return  // a replaced session's last messages are not acted on
        case .failure(let noCall)?:
            return reply(session, .error(.noCall, message: noCall.message), now: now)
        case .success(let result)?:
            (transition, recipient) = result
        }

        let relayed = signal.relayed(in: message, from: session.identity, callId: transition.call.id)
        if let recipient {
            relay(relayed, to: recipient)
        } else if case .relayed = transition {
            reply(session, .error(.offline, message: "\(message.to) is reconnecting; signal not delivered"), now: now)
        }
    }

    private func invite(_ signal: Signal, in message: ChatMessage, from session: Session, now: Int64) {
        let caller = session.user
        let callee = message.to
        let callId = signal.callId ?? CallID.generate()
        enum Outcome {
            case replaced
            case ringing(callee: Session)
            /// `recordId` is the client's callId unless a live call uses it: a refused invite never
            /// overwrites the record of a real call.
            case failed(CallFailureReason, recordId: String)
            case duplicate
        }
        let outcome = state.withLock { state -> Outcome in
            guard state.isCurrent(session) else { return .replaced }
            let monotonic = clock.monotonicNanoseconds()
            var bucket =
                state.inviteBuckets[caller]
                ?? TokenBucket(capacity: settings.invitesPerMinute, per: .seconds(60), now: monotonic)
            let allowed = bucket.take(now: monotonic)
            state.inviteBuckets[caller] = bucket
            let recordId = state.book.call(id: callId) == nil ? callId : CallID.generate()
            guard allowed else { return .failed(.rateLimited, recordId: recordId) }
            if caller == callee { return .failed(.forbidden, recordId: recordId) }
            guard let calleeSession = state.sessions[callee] else { return .failed(.offline, recordId: recordId) }
            switch state.book.invite(callId: callId, caller: caller, callee: callee, callType: signal.callType, now: now) {
            case .failure(.busy): return .failed(.busy, recordId: recordId)
            case .failure(.forbidden): return .failed(.forbidden, recordId: recordId)
            case .failure(.duplicateCallID): return .duplicate
            case .success(let call):
                state.ringTimers[callId] = scheduler.schedule(after: settings.ringTimeout) { [weak self] in
                    self?.ringTimeoutExpired(callId: callId)
                }
                records.enqueue(call.record(status: .invite, now: now))
                log(.invite, call, session)
                log(.ringing, call, session)
                return .ringing(callee: calleeSession)
            }
        }

        switch outcome {
        case .replaced:
            return
        case .duplicate:
            // The same answer as for an id that names an ended call's record: a stranger learns nothing.
            reply(session, .callFailed(callId: callId, to: callee, reason: .forbidden), now: now)
        case .failed(let reason, let recordId):
            reply(session, .callFailed(callId: signal.callId, to: callee, reason: reason), now: now)
            if reason == .offline || reason == .busy {
                let call = Call(id: recordId, caller: caller, callee: callee, callType: signal.callType, createdAt: now)
                records.enqueue(call.record(status: .failed, endedAt: now, endReason: reason.rawValue, now: now))
            }
            events.emit(
                CallEvent(.failed, level: "warn", caller: caller, callee: callee, callId: recordId,
                          reason: reason.rawValue, connection: session.connection)
            )
        case .ringing(let calleeSession):
            let relayed = signal.relayed(in: message, from: session.identity, callId: callId)
            relay(relayed, to: calleeSession)
            reply(session, .callRinging(callId: callId, to: callee), now: now)
        }
    }

    // MARK: Timers

    private func ringTimeoutExpired(callId: String) {
        let now = clock.nowMilliseconds()
        let ended = state.withLock { state -> (Call, [Session])? in
            state.ringTimers[callId] = nil
            guard let call = state.book.expireRinging(callId: callId) else { return nil }
            state.cancelGrace(of: call)
            records.enqueue(call.record(status: .missed, endedAt: now, endReason: HangupReason.timeout.rawValue, now: now))
            events.emit(CallEvent(.timeout, caller: call.caller, callee: call.callee, callId: call.id, reason: "timeout", connection: nil))
            return (call, [call.caller, call.callee].compactMap { state.sessions[$0] })
        }
        guard let (call, parties) = ended else { return }
        for party in parties {
            party.outlet.deliver(Notice.callHangup(callId: call.id, reason: .timeout).message(to: party.user, now: now))
        }
    }

    private func reconnectGraceExpired(for user: String) {
        let now = clock.nowMilliseconds()
        let reason = HangupReason.peerDisconnected
        let ended = state.withLock { state -> (Call, Session?)? in
            state.graceTimers[user] = nil
            guard state.sessions[user] == nil, let call = state.book.abandon(by: user) else { return nil }
            state.ringTimers.removeValue(forKey: call.id)?.cancel()
            state.graceTimers.removeValue(forKey: call.peer(of: user))?.cancel()
            records.enqueue(call.record(status: .hungUp, endedAt: now, endReason: reason.rawValue, now: now))
            events.emit(CallEvent(.hangup, caller: call.caller, callee: call.callee, callId: call.id, reason: reason.rawValue, connection: nil))
            return (call, state.sessions[call.peer(of: user)])
        }
        guard let (call, peer) = ended else { return }
        peer?.outlet.deliver(Notice.callHangup(callId: call.id, reason: reason).message(to: call.peer(of: user), now: now))
    }

    // MARK: Helpers

    /// Hands a client's message to its recipient. (Counted first, so that a client that sees the
    /// message sees it counted.)
    private func relay(_ message: ChatMessage, to recipient: Session) {
        metrics.relayed(.local)
        recipient.outlet.deliver(message)
    }

    /// Sends `notice` to `session`'s user, counted first.
    private func reply(_ session: Session, _ notice: Notice, now: Int64) {
        metrics.notice(notice)
        session.outlet.deliver(notice.message(to: session.user, now: now))
    }

    private func log(_ name: CallEvent.Name, _ call: Call, _ session: Session, reason: String? = nil) {
        events.emit(CallEvent(name, caller: call.caller, callee: call.callee, callId: call.id, reason: reason, connection: session.connection))
    }
}

extension Switchboard.State {
    /// Whether `session` is still its user's live session (not replaced by a newer connection).
    fileprivate func isCurrent(_ session: Session) -> Bool {
        sessions[session.user]?.id == session.id
    }

    /// Both parties of an ended call no longer need a reconnect grace.
    fileprivate mutating func cancelGrace(of call: Call) {
        graceTimers.removeValue(forKey: call.caller)?.cancel()
        graceTimers.removeValue(forKey: call.callee)?.cancel()
    }
}

extension CallTransition {
    /// The call the transition applied to.
    public var call: Call {
        switch self {
        case .accepted(let call), .ended(let call, _), .relayed(let call): call
        }
    }
}
