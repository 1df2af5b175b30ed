import NIOCore

/// Anything that sends Redis commands pipelined: a ``RedisConnection`` or a ``RedisClient``.
///
/// The async conveniences (`execute`) are written once here on top of the two `send` requirements.
package protocol RedisCommandSender: Sendable {
    /// Sends `command`; the future completes with its reply, or fails with a ``RedisError``.
    func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue>
    /// Sends `commands` pipelined (one flush); one future per command, in order.
    func send(batch commands: [[RESPArgument]]) -> [EventLoopFuture<RESPValue>]
    /// Sends `commands` pipelined (one flush); `onReply` is called once per command with its index and
    /// result, in order. A connection does this without a future per command; the default goes through
    /// ``send(batch:)``.
    func send(batch commands: [[RESPArgument]], onReply: @escaping RedisBatchCallback)
}

extension RedisCommandSender {
    package func send(batch commands: [[RESPArgument]], onReply: @escaping RedisBatchCallback) {
        for (index, future) in send(batch: commands).enumerated() {
            future.whenComplete { result in onReply(index, result.mapError { RedisError(wrapping: $0) }) }
        }
    }

    /// Sends `command` and returns its reply; throws as ``send(_:)`` fails.
    @discardableResult
    package func execute(_ command: [RESPArgument]) async throws(RedisError) -> RESPValue {
        try await RedisError.mapping { try await send(command).get() }
    }

    /// Sends `command` and returns its reply: `try await redis.execute("GET", "key")`.
    @discardableResult
    package func execute(_ command: RESPArgument...) async throws(RedisError) -> RESPValue {
        try await execute(command)
    }

    /// Sends `commands` pipelined (one flush) and returns each one's result, in order.
    package func execute(batch commands: [[RESPArgument]]) async -> [Result<RESPValue, RedisError>] {
        await RedisError.results(of: send(batch: commands))
    }
}
