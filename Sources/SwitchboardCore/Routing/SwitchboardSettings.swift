/// The call and limit settings the switchboard enforces.
package struct SwitchboardSettings: Sendable, Equatable {
    /// This node's id, reported by presence.
    package var nodeId: String
    /// How long an unanswered invite rings (`calls.ring_timeout`).
    package var ringTimeout: Duration
    /// How long a party of a call may be disconnected before the call ends (`calls.reconnect_grace`).
    package var reconnectGrace: Duration
    /// Invites a user may send per minute (`limits.invites_per_minute`).
    package var invitesPerMinute: Int

    package init(nodeId: String, ringTimeout: Duration, reconnectGrace: Duration, invitesPerMinute: Int) {
        self.nodeId = nodeId
        self.ringTimeout = ringTimeout
        self.reconnectGrace = reconnectGrace
        self.invitesPerMinute = invitesPerMinute
    }
}
