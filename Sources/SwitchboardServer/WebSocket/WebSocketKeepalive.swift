import NIOCore

/// The timers of one WebSocket connection as a value: what is due at a check, and when to check next.
///
/// Inbound frames only set a flag (`activity()`); the clock is read at checks, so the read timeout
/// is only as precise as the checks are frequent: `nextCheck(now:)` looks again at least every
/// quarter of `readTimeout`, so a silent peer is closed after 1 to 1.25 × `readTimeout`.
struct WebSocketKeepalive {
    /// What a check found due.
    enum Due: Equatable {
        /// Nothing.
        case nothing
        /// Send a ping (already recorded as sent).
        case ping
        /// Close the connection for this reason.
        case timeout(Timeout)
    }

    /// Which timer expired.
    enum Timeout: Equatable {
        /// No inbound frame nor reported activity for `readTimeout`.
        case read
        /// No pong within `pongTimeout` of a ping.
        case pong
        /// The channel was unwritable for `writeTimeout`.
        case write
    }

    /// The intervals (shared by a listener's connections).
    private let limits: WebSocketSessionLimits
    private var read: TimeAmount? { limits.readTimeout }
    private var write: TimeAmount? { limits.writeTimeout }
    private var ping: TimeAmount? { limits.pingInterval }
    private var pong: TimeAmount? { limits.pongTimeout }

    private var sawActivity = false
    private var lastActivity: NIODeadline
    private var lastPing: NIODeadline
    /// When the unanswered ping was sent; `nil` when no pong is due.
    private var pingSentAt: NIODeadline?
    /// Since when the channel has been unwritable; `nil` while writable.
    private var unwritableSince: NIODeadline?

    /// The timers of `limits`, started at `now`.
    init(limits: WebSocketSessionLimits, now: NIODeadline) {
        self.limits = limits
        self.lastActivity = now
        self.lastPing = now
    }

    /// The peer showed signs of life (any frame, or the application said so). No clock read.
    mutating func activity() {
        sawActivity = true
    }

    /// A pong arrived.
    mutating func pongReceived() {
        pingSentAt = nil
    }

    /// The channel became unwritable at `now`; returns when the write timeout would expire.
    mutating func becameUnwritable(now: NIODeadline) -> NIODeadline? {
        guard let write, unwritableSince == nil else { return nil }
        unwritableSince = now
        return now + write
    }

    /// The channel became writable again.
    mutating func becameWritable() {
        unwritableSince = nil
    }

    /// Folds in the activity seen since the last check and says what is due at `now`.
    mutating func check(now: NIODeadline) -> Due {
        if sawActivity {
            sawActivity = false
            lastActivity = now
        }
        if let read, now - lastActivity >= read {
            return .timeout(.read)
        }
        if let pong, let sent = pingSentAt, now - sent >= pong {
            return .timeout(.pong)
        }
        if let write, let since = unwritableSince, now - since >= write {
            return .timeout(.write)
        }
        if let ping, pingSentAt == nil, now - lastPing >= ping {
            lastPing = now
            if pong != nil {
                pingSentAt = now
            }
            return .ping
        }
        return .nothing
    }

    /// When the next check is needed (`nil`: every timer is off). Always after `now`.
    func nextCheck(now: NIODeadline) -> NIODeadline? {
        var next: NIODeadline?
        func consider(_ deadline: NIODeadline) {
            next = next.map { min($0, deadline) } ?? deadline
        }
        if let read {
            // Activity is only sampled at checks, so look again well before the deadline.
            consider(min(lastActivity + read, now + .nanoseconds(max(read.nanoseconds / 4, 1))))
        }
        if let sent = pingSentAt, let pong {
            consider(sent + pong)
        } else if let ping {
            consider(lastPing + ping)
        }
        if let since = unwritableSince, let write {
            consider(since + write)
        }
        // Never in the past: a timer that keeps firing at one instant would spin the event loop.
        return next.map { max($0, now + .milliseconds(1)) }
    }
}
