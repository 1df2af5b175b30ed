import SwitchboardProto

/// What the WebSocket and HTTP layers need of a node's domain logic: ``Switchboard`` in single-node
/// mode, a Redis-backed engine in cluster mode.
///
/// Every method is safe to call from any thread and never blocks; work that must wait (for Redis)
/// completes later, and each session's messages still take effect in the order they arrived.
public protocol SignalingEngine: Sendable {
    /// This node's id.
    var nodeId: String { get }

    /// Registers a new connection for `identity`; an older connection of the same user (on any node)
    /// is told `session-replaced` and closed with 4001. `whenReachable` runs once messages from
    /// anywhere (any node) reach the session: at once on a single node, after Redis has the user's
    /// presence in cluster mode (or could not be asked). The server writes the 101 then.
    func connect(
        _ identity: UserIdentity,
        connection: ConnectionInfo,
        outlet: any SessionOutlet,
        whenReachable: @escaping @Sendable () -> Void
    ) -> Session

    /// Forgets a closed connection. A party of a call gets `calls.reconnect_grace` to come back.
    func disconnect(_ session: Session)

    /// Handles one decoded message from `session`: relays it, or answers with a notice.
    func receive(_ message: ChatMessage, from session: Session)

    /// The node `user` is connected to, or `nil` when offline.
    func presence(of user: String) async throws -> String?

    /// The number of users connected to this node.
    var sessionCount: Int { get }

    /// The number of calls ringing or active that this node knows of.
    var callCount: Int { get }

    /// The engine's counters (`/metrics`); the WebSocket layer counts its own notices there too.
    var metrics: SignalingMetrics { get }

    /// Whether the node can serve (in cluster mode: Redis reachable).
    var isReady: Bool { get }
}

extension SignalingEngine {
    /// Registers a new connection for `identity` when nobody needs to know when it is reachable.
    public func connect(_ identity: UserIdentity, connection: ConnectionInfo, outlet: any SessionOutlet) -> Session {
        connect(identity, connection: connection, outlet: outlet, whenReachable: {})
    }
}
