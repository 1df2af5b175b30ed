import NIOCore

/// An encoded command on its way to the wire, with what its reply completes.
///
/// Write one into a channel whose pipeline holds a `RedisChannelHandler` (or hand it to the
/// handler directly): the handler registers the completion, then writes the bytes.
struct RedisOutboundCommand: Sendable {
    /// The RESP encoding of the command.
    var bytes: ByteBuffer
    /// Completed with the reply (the last one, for a command with several replies).
    var completion: RedisReplyCompletion
    /// How many replies the command gets: 1, or one per channel for `SUBSCRIBE` / `UNSUBSCRIBE`.
    var replies: Int = 1
    /// When the command was handed to the connection: its reply latency is measured from here.
    var enqueuedAt: NIODeadline = .now()
}

/// What a command's reply completes: a promise, or the callback of the batch the command was sent in
/// (with the command's place in it), which costs no future per command.
enum RedisReplyCompletion: Sendable {
    case promise(EventLoopPromise<RESPValue>)
    case callback(RedisBatchCallback, index: Int)

    func complete(with result: Result<RESPValue, RedisError>) {
        switch self {
        case .promise(let promise): promise.completeWith(result.mapError { $0 })
        case .callback(let callback, let index): callback(index, result)
        }
    }

    func fail(_ error: RedisError) { complete(with: .failure(error)) }
}

/// Called once for each command of a batch, with its index in the batch and its reply, in order.
package typealias RedisBatchCallback = @Sendable (_ index: Int, _ result: Result<RESPValue, RedisError>) -> Void
