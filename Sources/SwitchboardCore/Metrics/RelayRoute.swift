/// How a relayed message reached its recipient: the `route` label of `switchboard_messages_relayed_total`.
package enum RelayRoute: String, Sendable, CaseIterable {
    /// Written straight to a session on this node.
    case local
    /// Published for a recipient connected to another node (cluster mode).
    case remote
}
