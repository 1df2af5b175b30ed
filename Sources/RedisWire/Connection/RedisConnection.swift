import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One TCP connection to a Redis server, pipelined: commands are written as they come, replies
/// complete them in order.
///
/// Auto-pipelining: commands sent during one event-loop tick are flushed together. From the
/// connection's own event loop a command is written at once and one flush runs at the end of
/// the tick; from other threads commands gather in a locked outbox that one scheduled task
/// drains with a single flush. No task or timer is created per command.
///
/// Each reply's latency and each `PUBLISH` sent are counted in the connection's ``RedisMetrics``.
///
/// The connection does not reconnect; ``RedisClient`` and ``RedisSubscriber`` do.
package final class RedisConnection: RedisCommandSender {
    private struct Outbox {
        var commands: [RedisOutboundCommand] = []
        var drainScheduled = false
    }

    /// The connection's channel.
    let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let outbox = NIOLockedValueBox(Outbox())
    private let metrics: RedisMetrics

    /// The event loop the connection does all its I/O on; futures it returns complete there.
    package var eventLoop: any EventLoop { channel.eventLoop }

    /// Completes when the connection has closed, for any reason.
    package var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// `true` while the connection is open.
    package var isActive: Bool { channel.isActive }

    private init(channel: any Channel, handler: NIOLoopBound<RedisChannelHandler>, metrics: RedisMetrics) {
        self.channel = channel
        self.handler = handler
        self.metrics = metrics
    }

    // MARK: Connecting

    /// Connects to `configuration.endpoint`, then sends `AUTH` (when there is a password) and
    /// `SELECT` (when the database is not 0), pipelined.
    ///
    /// Fails with ``RedisError/Code/connectFailed`` when the TCP connect fails or times out, or
    /// when `AUTH` or `SELECT` is refused (the connection is closed then).
    package static func connect(
        configuration: RedisConnectionConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        logger: Logger = Logger(label: "RedisWire"),
        metrics: RedisMetrics = RedisMetrics()
    ) -> EventLoopFuture<RedisConnection> {
        connect(configuration: configuration, eventLoop: eventLoop, logger: logger, metrics: metrics, onMessage: nil)
    }

    /// Connects; with `onMessage` the connection is a subscriber connection whose `message` pushes
    /// go to `onMessage` (on the event loop).
    static func connect(
        configuration: RedisConnectionConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        metrics: RedisMetrics,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    ) -> EventLoopFuture<RedisConnection> {
        let endpoint = configuration.endpoint
        let commandTimeout = configuration.commandTimeout.map { TimeAmount($0) }
        var logger = logger
        logger[metadataKey: "redis"] = "\(endpoint)"
        let handlerLogger = logger
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = RedisChannelHandler(
                        commandTimeout: commandTimeout,
                        commandDuration: metrics.commandDuration,
                        onMessage: onMessage,
                        allocator: channel.allocator,
                        logger: handlerLogger
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        return bootstrap.connect(host: endpoint.host, port: endpoint.port)
            .flatMapErrorThrowing { error in
                throw RedisError(code: .connectFailed, message: "cannot connect to \(endpoint): \(error)")
            }
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self)
                return RedisConnection(
                    channel: channel,
                    handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                    metrics: metrics
                )
            }
            .flatMap { connection in
                connection.logIn(to: endpoint).map { @Sendable () -> RedisConnection in connection }
            }
    }

    /// `AUTH` and `SELECT` for `endpoint`, pipelined; closes the connection when either fails.
    private func logIn(to endpoint: RedisEndpoint) -> EventLoopFuture<Void> {
        var commands: [[RESPArgument]] = []
        if let password = endpoint.password {
            if let username = endpoint.username {
                commands.append(["AUTH", RESPArgument(username), RESPArgument(password)])
            } else {
                commands.append(["AUTH", RESPArgument(password)])
            }
        }
        if endpoint.database != 0 {
            commands.append(["SELECT", RESPArgument(endpoint.database)])
        }
        guard !commands.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let channel = self.channel
        return EventLoopFuture.andAllSucceed(send(batch: commands), on: eventLoop)
            .flatMapError { error in
                let message = (error as? RedisError)?.message ?? "\(error)"
                let failure = RedisError(code: .connectFailed, message: "AUTH/SELECT on \(endpoint) failed: \(message)")
                return channel.close().flatMapThrowing { throw failure }.flatMapErrorThrowing { _ in throw failure }
            }
    }

    // MARK: Commands

    /// Sends `command` (e.g. `["SET", "key", RESPArgument(bytes)]`); the future completes with its reply.
    ///
    /// Fails with ``RedisError/Code/server`` for an error reply, ``RedisError/Code/timeout`` when no
    /// reply comes within the command timeout, ``RedisError/Code/connectionClosed`` when the
    /// connection closes first, ``RedisError/Code/invalidCommand`` for an empty command.
    package func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        send(command, replies: 1)
    }

    /// Sends `commands` pipelined (in one flush); one future per command, in order.
    package func send(batch commands: [[RESPArgument]]) -> [EventLoopFuture<RESPValue>] {
        var outbound: [RedisOutboundCommand] = []
        outbound.reserveCapacity(commands.count)
        var futures: [EventLoopFuture<RESPValue>] = []
        futures.reserveCapacity(commands.count)
        for command in commands {
            let promise = eventLoop.makePromise(of: RESPValue.self)
            futures.append(promise.futureResult)
            switch encode(command, replies: 1, completion: .promise(promise)) {
            case .success(let encoded): outbound.append(encoded)
            case .failure(let error): promise.fail(error)
            }
        }
        submit(outbound)
        return futures
    }

    /// Sends `commands` pipelined (in one flush); `onReply` is called with each one's index and result,
    /// in order, on the connection's event loop (for a command that cannot be encoded, at once). No
    /// future is made per command.
    package func send(batch commands: [[RESPArgument]], onReply: @escaping RedisBatchCallback) {
        var outbound: [RedisOutboundCommand] = []
        outbound.reserveCapacity(commands.count)
        for (index, command) in commands.enumerated() {
            switch encode(command, replies: 1, completion: .callback(onReply, index: index)) {
            case .success(let encoded): outbound.append(encoded)
            case .failure(let error): onReply(index, .failure(error))
            }
        }
        submit(outbound)
    }

    /// Sends a command that gets `replies` replies (`SUBSCRIBE a b` gets two); completes with the last.
    func send(_ command: [RESPArgument], replies: Int) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        switch encode(command, replies: replies, completion: .promise(promise)) {
        case .success(let encoded): submit(CollectionOfOne(encoded))
        case .failure(let error): promise.fail(error)
        }
        return promise.futureResult
    }

    /// Closes the connection; commands still pending fail with ``RedisError/Code/connectionClosed``.
    @discardableResult
    package func close() -> EventLoopFuture<Void> {
        channel.close().recover { _ in }  // already closed is fine
    }

    private func encode(
        _ command: [RESPArgument],
        replies: Int,
        completion: RedisReplyCompletion
    ) -> Result<RedisOutboundCommand, RedisError> {
        // Room for the RESP framing too (a count and two line ends an argument): no reallocation.
        var bytes = channel.allocator.buffer(capacity: command.reduce(16) { $0 + $1.byteCount + 16 })
        do throws(RedisError) {
            try RESPCommandEncoder.encode(command, into: &bytes)
        } catch {
            return .failure(error)
        }
        if command.first?.isPublish == true { metrics.messagesOut.increment() }
        return .success(RedisOutboundCommand(bytes: bytes, completion: completion, replies: replies))
    }

    /// Hands encoded commands to the channel handler, keeping their order.
    private func submit(_ commands: some Collection<RedisOutboundCommand>) {
        guard !commands.isEmpty else { return }
        if eventLoop.inEventLoop {
            let handler = self.handler.value
            // Commands queued earlier from other threads go first.
            drainOutbox(into: handler)
            for command in commands { handler.enqueue(command) }
            handler.scheduleFlush()
            return
        }
        let scheduleDrain = outbox.withLockedValue { outbox in
            outbox.commands.append(contentsOf: commands)
            defer { outbox.drainScheduled = true }
            return !outbox.drainScheduled
        }
        if scheduleDrain {
            eventLoop.execute { self.drain() }
        }
    }

    /// On the event loop: writes everything in the outbox, then flushes once.
    private func drain() {
        let handler = self.handler.value
        drainOutbox(into: handler)
        handler.flushNow()
    }

    private func drainOutbox(into handler: RedisChannelHandler) {
        let commands = outbox.withLockedValue { outbox in
            outbox.drainScheduled = false
            defer { outbox.commands = [] }
            return outbox.commands
        }
        for command in commands { handler.enqueue(command) }
    }
}
