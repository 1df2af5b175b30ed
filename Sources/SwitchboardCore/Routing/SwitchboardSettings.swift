/// The call and limit settings the switchboard enforces.
public struct SwitchboardSettings: Sendable, Equatable {
    /// This node's id, reported by presence.
    public var nodeId: String
    /// How long an unanswered invite rings (`calls.ring_timeout`).
    public var ringTimeout: Duration
    /// How long a party of a call may be disconnected before the call ends (`calls.reconnect_grace`).
    public var reconnectGrace: Duration
    /// Invites a user may send per minute (`limits.invites_per_minute`).
    public var invitesPerMinute: Int

    public init(nodeId: String, ringTimeout: Duration, reconnectGrace: Duration, invitesPerMinute: Int) {
        self.nodeId = nodeId
        self.ringTimeout = ringTimeout
        self.reconnectGrace = reconnectGrace
        self.invitesPerMinute = invitesPerMinute
    }
}
