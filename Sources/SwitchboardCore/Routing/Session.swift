/// One authenticated connection of a user to this node.
///
/// A class: it is passed along every message's path and kept in the engine's map, where a copy of
/// its fields would cost a retain each (issue 10's profile).
package final class Session: Sendable {
    /// Distinguishes this connection from an earlier or later one of the same user.
    package let id: UInt64
    package let identity: UserIdentity
    package let connection: ConnectionInfo
    package let outlet: any SessionOutlet

    package init(id: UInt64, identity: UserIdentity, connection: ConnectionInfo, outlet: any SessionOutlet) {
        self.id = id
        self.identity = identity
        self.connection = connection
        self.outlet = outlet
    }

    /// The user's id.
    package var user: String { identity.id }
}

/// WebSocket close codes the node uses beyond RFC 6455's.
package enum CloseCode {
    /// A newer connection of the same user took over (PROTOCOL.md §2).
    package static let sessionReplaced: UInt16 = 4001
    /// The node is shutting down: reconnect (to another node).
    package static let goingAway: UInt16 = 1001
}
