import SwitchboardProto

/// The write side of one connected user's socket. Calls never block; delivery keeps the order of calls.
package protocol SessionOutlet: Sendable {
    /// Queues `message` for the socket.
    func deliver(_ message: ChatMessage)
    /// Queues the message `message` holds in its bytes, as it is (see ``EncodedChatMessage``).
    func deliver(encoded message: some EncodedChatMessage)
    /// Queues a close frame with `code` after what was delivered before.
    func close(code: UInt16, reason: String)
}

/// Runs work later, off the caller's stack (an event loop in the server, a fake clock in tests).
package protocol TimerScheduler: Sendable {
    /// Runs `action` once after `delay`, unless cancelled first.
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> any ScheduledTimer
}

/// A timer that can still be cancelled.
package protocol ScheduledTimer: Sendable {
    func cancel()
}

/// Takes call record snapshots for durable storage, in order, without blocking.
package protocol CallRecordSink: Sendable {
    func enqueue(_ record: CallRecord)
}

/// Takes call events for the log (PROTOCOL.md §7), without blocking.
package protocol CallEventSink: Sendable {
    func emit(_ event: CallEvent)
}

/// Where a session comes from, for call event metadata.
package struct ConnectionInfo: Sendable, Equatable {
    package var userAgent: String
    package var ip: String

    package init(userAgent: String, ip: String) {
        self.userAgent = userAgent
        self.ip = ip
    }
}

/// One line of the call event log, in the seed's format.
package struct CallEvent: Sendable, Equatable {
    /// The event names of the seed, e.g. `webrtc_call_invite`.
    package enum Name: String, Sendable {
        case invite = "webrtc_call_invite"
        case ringing = "webrtc_call_ringing"
        case accept = "webrtc_call_accept"
        case reject = "webrtc_call_reject"
        case hangup = "webrtc_call_hangup"
        case timeout = "webrtc_call_timeout"
        case failed = "webrtc_call_failed"
        /// Beside `failed` for an invite to an offline callee, so that the app's backend can push (§10).
        case offline = "webrtc_call_offline"
        /// The first `call-connected` of a call (§8, §10).
        case connected = "webrtc_call_connected"
    }

    package var name: Name
    package var level: String
    package var caller: String
    package var callee: String
    package var callId: String
    package var reason: String?
    package var connection: ConnectionInfo?

    package init(
        _ name: Name,
        level: String = "info",
        caller: String,
        callee: String,
        callId: String,
        reason: String? = nil,
        connection: ConnectionInfo?
    ) {
        self.name = name
        self.level = level
        self.caller = caller
        self.callee = callee
        self.callId = callId
        self.reason = reason
        self.connection = connection
    }
}
