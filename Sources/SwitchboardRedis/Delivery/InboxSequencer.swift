import NIOCore
import Synchronization

/// Puts the envelopes of each origin back in the order they were published.
///
/// An envelope that found no receiver is published again (``NodeOutbox``), and one published after it
/// may have arrived first (the inbox's subscriber came back between the two). The rules (numbering per
/// origin run, the wait for a missing number, its timeout, the bound on what waits) are
/// ``InboxStateMachine``'s; this class is its driver: it gives it each envelope with the time of its
/// event loop, under one lock, and performs what it returns (delivering, reporting gaps, the gap timers).
///
/// Everything happens on the event loop given at init: the envelopes are handed on there, and the gap
/// timers run there, so that what a timer releases never overtakes what an envelope releases. An
/// envelope accepted on another thread is taken there first (in the order accepted).
final class InboxSequencer: Sendable {
    typealias Position = InboxStateMachine.Position

    /// Where envelopes are handed on and gap timers run; whose clock is used.
    let eventLoop: any EventLoop
    private let machine: Mutex<InboxStateMachine>
    /// The gap timers, by origin run: touched only on `eventLoop`.
    private let gapTimers: NIOLoopBoundBox<[InboxStateMachine.Origin: Scheduled<Void>]>

    init(gapTimeout: Duration, maxWaitingBytes: Int = ClusterBufferLimits.standard.reorderMaxBytes, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.machine = Mutex(InboxStateMachine(gapTimeout: gapTimeout, maxWaitingBytes: maxWaitingBytes))
        self.gapTimers = .makeBoxSendingValue([:], eventLoop: eventLoop)
    }

    /// What an envelope counts while it waits.
    static func cost(of envelope: Envelope) -> Int { InboxStateMachine.cost(of: envelope) }

    /// Where every origin run's stream stands (after the inbox reconnected, the missing tails are asked for).
    var positions: [Position] { machine.withLock { $0.positions } }

    /// Hands `envelope`, and any waiting envelopes it releases, to `deliver` in order, on ``eventLoop``
    /// (`deliver` is also called there when a gap times out). `onGap` is told, there too, when envelopes
    /// `position.expected...through` are found missing.
    func accept(
        _ envelope: Envelope,
        onGap: @escaping @Sendable (_ position: Position, _ through: UInt64) -> Void = { _, _ in },
        deliver: @escaping @Sendable (Envelope) -> Void
    ) {
        guard eventLoop.inEventLoop else {
            return eventLoop.execute { self.accept(envelope, onGap: onGap, deliver: deliver) }
        }
        guard !machine.withLock({ $0.receiveInOrder(envelope) }) else { return deliver(envelope) }
        let now = eventLoop.now.uptimeNanoseconds
        let actions = machine.withLock { $0.receive(envelope, now: now) }
        perform(actions, onGap: onGap, deliver: deliver)
    }

    private func gapTimedOut(_ origin: InboxStateMachine.Origin, deliver: @escaping @Sendable (Envelope) -> Void) {
        gapTimers.value[origin] = nil
        let now = eventLoop.now.uptimeNanoseconds
        let actions = machine.withLock { $0.gapTimedOut(origin, now: now) }
        perform(actions, onGap: { _, _ in }, deliver: deliver)
    }

    /// On ``eventLoop``.
    private func perform(
        _ actions: [InboxStateMachine.Action],
        onGap: @Sendable (Position, UInt64) -> Void,
        deliver: @escaping @Sendable (Envelope) -> Void
    ) {
        for action in actions {
            switch action {
            case .deliver(let envelopes):
                for envelope in envelopes { deliver(envelope) }
            case .reportGap(let position, let through):
                onGap(position, through)
            case .scheduleGapTimeout(let origin, let deadline):
                gapTimers.value[origin]?.cancel()
                gapTimers.value[origin] = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                    self.gapTimedOut(origin, deliver: deliver)
                }
            case .cancelGapTimeout(let origin):
                gapTimers.value.removeValue(forKey: origin)?.cancel()
            }
        }
    }
}
