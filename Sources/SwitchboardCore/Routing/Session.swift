/// One authenticated connection of a user to this node.
public struct Session: Sendable {
    /// Distinguishes this connection from an earlier or later one of the same user.
    public let id: UInt64
    public let identity: UserIdentity
    public let connection: ConnectionInfo
    public let outlet: any SessionOutlet

    public init(id: UInt64, identity: UserIdentity, connection: ConnectionInfo, outlet: any SessionOutlet) {
        self.id = id
        self.identity = identity
        self.connection = connection
        self.outlet = outlet
    }

    /// The user's id.
    public var user: String { identity.id }
}

/// WebSocket close codes the node uses beyond RFC 6455's.
public enum CloseCode {
    /// A newer connection of the same user took over (PROTOCOL.md §2).
    public static let sessionReplaced: UInt16 = 4001
    /// The node is shutting down: reconnect (to another node).
    public static let goingAway: UInt16 = 1001
}
