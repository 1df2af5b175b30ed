import NIOCore

/// A message published on a channel this subscriber listens to.
package struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel the message was published on.
    package var channel: String
    /// The published bytes, as they were sent.
    package var payload: ByteBuffer

    /// A message on `channel` carrying `payload`.
    package init(channel: String, payload: ByteBuffer) {
        self.channel = channel
        self.payload = payload
    }
}
