import NIOCore

/// An encoded command on its way to the wire, with the promise its reply completes.
///
/// Write one into a channel whose pipeline holds a `RedisChannelHandler` (or hand it to the
/// handler directly): the handler registers the promise, then writes the bytes.
struct RedisOutboundCommand: Sendable {
    /// The RESP encoding of the command.
    var bytes: ByteBuffer
    /// Completed with the reply (the last one, for a command with several replies).
    var promise: EventLoopPromise<RESPValue>
    /// How many replies the command gets: 1, or one per channel for `SUBSCRIBE` / `UNSUBSCRIBE`.
    var replies: Int = 1
    /// When the command was handed to the connection: its reply latency is measured from here.
    var enqueuedAt: NIODeadline = .now()
}
