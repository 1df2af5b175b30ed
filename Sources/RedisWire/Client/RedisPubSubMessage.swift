import NIOCore

/// A message published on a channel this subscriber listens to.
public struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel the message was published on.
    public var channel: String
    /// The published bytes, as they were sent.
    public var payload: ByteBuffer

    /// A message on `channel` carrying `payload`.
    public init(channel: String, payload: ByteBuffer) {
        self.channel = channel
        self.payload = payload
    }
}
