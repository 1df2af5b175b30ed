import NIOCore
import NIOWebSocket
import SwiftProtobuf
import SwitchboardAuth
import SwitchboardCore
import SwitchboardProto

/// The application end of a `/ws` connection: decodes each whole message and hands it to the switchboard.
///
/// Not a pipeline handler: its ``WebSocketSessionHandler`` calls it (``WebSocketMessageReceiver``) for
/// messages, read bursts, reads and the channel's end, and writes for it (one pipeline context fewer
/// per connection).
///
/// Made on the connection's event loop when the upgrade is accepted, before the 101 is written: the
/// `ice-servers` notice is queued first, then its session is registered at once (PROTOCOL.md §9: reachable before the client sees the 101), and what is
/// sent to it waits in its outlet until the pipeline is in place. Runs with no hop per message.
///
/// Every frame takes a token from the user's ``UserBudget`` first (heartbeats and pings too); over the
/// budget a frame is dropped, with a `rate-limited` notice at most once a second. Once a frame was
/// dropped, the handler holds the pipeline's `read()` until the budget has refilled a little
/// (``UserBudget/readPause(now:)``), so a client that keeps sending over its budget is held back by TCP:
/// the node reads from it a few times a second. An invite that names
/// its own `callId` waits for the call-id check (an id that names any record is refused, PROTOCOL.md §9);
/// meanwhile the handler holds the pipeline's `read()` and keeps what was already read, so the sender's
/// later messages keep their order behind the invite and nobody else waits.
final class SignalingHandler: WebSocketMessageReceiver {
    /// Whether a client-chosen call id is taken (names a record); asked off the event loop.
    typealias CallIDCheck = @Sendable (String) async -> Bool

    /// What the handlers of a node's connections share, held by each as one reference.
    final class Services: Sendable {
        let switchboard: Switchboard
        let budgets: UserBudgets
        let iceServers: ICEServerIssuer
        let isCallIDTaken: CallIDCheck
        let batcher: FlushBatcher

        init(
            switchboard: Switchboard,
            budgets: UserBudgets,
            iceServers: ICEServerIssuer,
            isCallIDTaken: @escaping CallIDCheck,
            batcher: FlushBatcher
        ) {
            self.switchboard = switchboard
            self.budgets = budgets
            self.iceServers = iceServers
            self.isCallIDTaken = isCallIDTaken
            self.batcher = batcher
        }
    }

    private let services: Services
    private var switchboard: Switchboard { services.switchboard }
    private var batcher: FlushBatcher { services.batcher }
    private let budget: UserBudget
    private let outlet: ChannelOutlet
    private var eventLoop: any EventLoop { outlet.eventLoop }
    private var session: Session?
    /// Whether this connection has begun a read burst that `readComplete()` must end.
    private var readingBurst = false
    /// Messages read while a call-id check runs, in order. Bounded by what one read brings: the
    /// pipeline's `read()` is held meanwhile.
    private var waiting: [WebSocketMessage] = []
    private var checking = false
    private var readHeld = false
    /// Resumes reading once the budget has refilled, while it is empty.
    private var budgetPause: Scheduled<Void>?
    /// Whether a frame was over the budget since reading last resumed.
    private var overBudget = false
    /// The session handler, once in the pipeline, until the channel closes.
    private var sessionHandler: WebSocketSessionHandler?

    /// The application end of `acceptance` (of `identity`): a handler whose session is registered with
    /// the switchboard, and when that session is reachable from every node. Call on `channel`'s loop.
    static func application(
        for acceptance: WebSocketGate.Acceptance,
        identity: UserIdentity,
        channel: any Channel,
        services: Services
    ) -> WebSocketApplication {
        let reachable = channel.eventLoop.makePromise(of: Void.self)
        let handler = SignalingHandler(acceptance, identity, channel, services, reachable)
        return WebSocketApplication(receiver: handler, reachable: reachable.futureResult)
    }

    private init(
        _ acceptance: WebSocketGate.Acceptance,
        _ identity: UserIdentity,
        _ channel: any Channel,
        _ services: Services,
        _ reachable: EventLoopPromise<Void>
    ) {
        self.services = services
        let switchboard = services.switchboard
        self.budget = services.budgets.budget(of: identity.id, now: SwitchboardClock.system.monotonicNanoseconds())
        self.outlet = ChannelOutlet(channel: channel, batcher: services.batcher, slot: acceptance.slot, open: false)
        // Before the session is reachable: `ice-servers` is the first frame the client receives (§8).
        let now = SwitchboardClock.system.nowMilliseconds()
        let servers = Notice.iceServers(services.iceServers.servers(for: identity.id, now: now / 1000))
        outlet.deliver(servers.message(to: identity.id, now: now))
        let session = switchboard.connect(identity, connection: acceptance.connection, outlet: outlet) {
            reachable.succeed()
        }
        self.session = session
    }

    /// Whether a ping may be answered: it takes from the budget like any frame.
    func admitsPing() -> Bool {
        guard budget.take(now: SwitchboardClock.system.monotonicNanoseconds()) == .allowed else {
            overBudget = true
            return false
        }
        return true
    }

    func attached(to session: WebSocketSessionHandler) {
        sessionHandler = session
        outlet.open(writer: session)
    }

    func sessionClosed() {
        if readingBurst {
            readingBurst = false
            batcher.endReading(on: eventLoop)
        }
        sessionHandler = nil
        waiting.removeAll()
        budgetPause?.cancel()
        budgetPause = nil
        end()
    }

    func upgradeFailed() {
        end()
    }

    /// Frees the connection's place and forgets its session, once. (Not a callback on the channel's
    /// close future: that would cost a closure and a place in the future's list per connection.)
    private func end() {
        guard let ended = session else { return }
        session = nil
        outlet.releaseSlot()
        switchboard.disconnect(ended)
    }

    func receive(_ message: WebSocketMessage) {
        guard session != nil else { return }
        if !readingBurst {
            readingBurst = true
            batcher.beginReading(on: eventLoop)
        }
        if checking {
            waiting.append(message)
        } else {
            handle(message)
        }
    }

    func readComplete() {
        if readingBurst {
            readingBurst = false
            batcher.endReading(on: eventLoop)
        }
    }

    /// Holds reads while a call-id check runs, and after a frame over the budget until it has refilled.
    func admitsRead() -> Bool {
        guard !checking, budgetPause == nil else {
            readHeld = true
            return false
        }
        if overBudget, let pause = budget.readPause(now: SwitchboardClock.system.monotonicNanoseconds()) {
            readHeld = true
            budgetPause = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(clamping: pause))) {
                self.budgetPause = nil
                self.readAgainIfHeld()
            }
            return false
        }
        overBudget = false
        return true
    }

    /// Passes on a read held back, unless something still holds it.
    private func readAgainIfHeld() {
        guard readHeld, session != nil else { return }
        readHeld = false
        sessionHandler?.readAgain()
    }

    private func handle(_ frame: WebSocketMessage) {
        guard let session else { return }
        switch budget.take(now: SwitchboardClock.system.monotonicNanoseconds()) {
        case .allowed:
            break
        case .refused(let notify):
            overBudget = true
            if notify { reply(.error(.rateLimited, message: "over this user's message budget (limits.messages_*)")) }
            return
        }
        let payload: ByteBuffer
        switch frame {
        case .text:
            return reply(.error(.invalidMessage, message: "send ChatMessage protobuf in binary frames"))
        case .binary(let buffer):
            payload = buffer
        }
        let message: ChatMessage
        do {
            message = try payload.withUnsafeReadableBytes { try ChatMessage(serializedBytes: $0.bytes) }
        } catch {
            return reply(.error(.invalidMessage, message: "frame is not a ChatMessage: \(error)"))
        }
        // (The heartbeat's frame already counted as the peer's activity for the read timeout.)
        if let pong = message.heartbeatReply {
            return session.outlet.deliver(pong)
        }
        if let callId = message.clientChosenInviteCallID {
            return check(callId, of: message)
        }
        switchboard.receive(message, from: session)
    }

    /// Asks whether `callId` is taken, then refuses or hands over `invite`, then what waited behind it.
    private func check(_ callId: String, of invite: ChatMessage) {
        checking = true
        let promise = eventLoop.makePromise(of: Bool.self)
        promise.completeWithTask { [services] in await services.isCallIDTaken(callId) }
        promise.futureResult.assumeIsolated().whenSuccess { taken in
            self.checking = false
            guard let session = self.session else { return }
            if taken {
                self.reply(.callFailed(callId: callId, to: invite.to, reason: .forbidden))
            } else {
                self.switchboard.receive(invite, from: session)
            }
            self.resume()
        }
    }

    /// Handles what waited (until another check begins), then reads again.
    private func resume() {
        batcher.beginReading(on: eventLoop)
        var handled = 0
        while !checking, handled < waiting.count {
            handled += 1
            handle(waiting[handled - 1])
        }
        waiting.removeFirst(handled)
        batcher.endReading(on: eventLoop)
        if !checking { readAgainIfHeld() }
    }

    private func reply(_ notice: Notice) {
        guard let session else { return }
        switchboard.metrics.notice(notice)
        session.outlet.deliver(notice.message(to: session.user, now: SwitchboardClock.system.nowMilliseconds()))
    }
}
