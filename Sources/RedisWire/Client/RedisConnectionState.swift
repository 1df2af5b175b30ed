/// Whether a ``RedisClient`` or ``RedisSubscriber`` has a live connection.
package enum RedisConnectionState: Sendable, Hashable {
    /// Connected, logged in (and, for a subscriber, subscribed to every channel): commands are sent.
    case connected
    /// Not connected (not yet, reconnecting, or stopped): commands fail with ``RedisError/Code/unavailable``.
    case disconnected
}
