import NIOConcurrencyHelpers
import NIOCore

/// The timers of the WebSocket sessions on one event loop. A session's deadline is rounded up to the
/// next multiple of ``granularity``, and the sessions due at one instant share one scheduled task.
///
/// A task of its own cost each connection about 300 bytes (NIO's task, its promise and four closures)
/// and, to cancel it, a scan of every task on the loop (issue 10: memory per idle connection). Here a
/// session costs an entry in its instant's table, and cancelling removes that entry; the loop holds one
/// task per instant that has sessions, at most the longest interval over ``granularity``.
///
/// Loop-bound: used only on `eventLoop`.
final class SessionTimerWheel {
    /// How late, at most, a timer fires (nanoseconds): deadlines are rounded up to a multiple of it.
    static let granularity: UInt64 = 100_000_000

    /// The sessions due at one instant, and the task that fires them.
    private struct Slot {
        var task: Scheduled<Void>
        var sessions: [ObjectIdentifier: WebSocketSessionHandler]
    }

    private let eventLoop: any EventLoop
    /// Keyed by instant (a multiple of ``granularity``, in nanoseconds of uptime over it).
    private var slots: [UInt64: Slot] = [:]

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The instant a timer for `deadline` fires at: the first multiple of ``granularity`` not before it.
    static func instant(for deadline: NIODeadline) -> UInt64 {
        let nanoseconds = deadline.uptimeNanoseconds
        return nanoseconds / granularity + (nanoseconds % granularity == 0 ? 0 : 1)
    }

    /// How many instants have a task, and how many sessions wait in all (for tests).
    var usage: (instants: Int, sessions: Int) {
        (slots.count, slots.values.reduce(0) { $0 + $1.sessions.count })
    }

    /// `session`'s ``WebSocketSessionHandler/timerFired(at:)`` runs at `instant` unless removed before.
    func add(_ session: WebSocketSessionHandler, at instant: UInt64) {
        let key = ObjectIdentifier(session)
        if slots[instant] != nil {
            slots[instant]!.sessions[key] = session
            return
        }
        let task = eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(instant * Self.granularity)) {
            self.fire(instant)
        }
        slots[instant] = Slot(task: task, sessions: [key: session])
    }

    /// `session` no longer waits for `instant`; an instant left without sessions gives up its task.
    func remove(_ session: WebSocketSessionHandler, at instant: UInt64) {
        guard slots[instant]?.sessions.removeValue(forKey: ObjectIdentifier(session)) != nil,
            slots[instant]!.sessions.isEmpty
        else { return }
        slots.removeValue(forKey: instant)?.task.cancel()
    }

    private func fire(_ instant: UInt64) {
        guard let slot = slots.removeValue(forKey: instant) else { return }
        for session in slot.sessions.values {
            session.timerFired(at: instant)
        }
    }
}

/// A listener's ``SessionTimerWheel``s, one per event loop, made on first use.
final class SessionTimerWheels: Sendable {
    private let wheels = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<SessionTimerWheel>]>([:])

    /// The wheel of `loop`. Call on `loop`.
    func wheel(on loop: any EventLoop) -> SessionTimerWheel {
        wheels.withLockedValue { wheels in
            let key = ObjectIdentifier(loop)
            if let wheel = wheels[key] { return wheel.value }
            let wheel = SessionTimerWheel(eventLoop: loop)
            // The bound box holds `loop`, so no other loop can take its identifier.
            wheels[key] = NIOLoopBound(wheel, eventLoop: loop)
            return wheel
        }
    }
}
