import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Keeps one connection alive: connects, prepares it, reports the state, waits for it to drop,
/// and reconnects with backoff, until its task is cancelled.
///
/// Shared by ``RedisClient`` (the command connection) and ``RedisSubscriber`` (the pub/sub connection).
final class RedisConnectionSupervisor: Sendable {
    let configuration: RedisConnectionConfiguration
    let reconnectPolicy: RedisReconnectPolicy
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    let metrics: RedisMetrics
    private let onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    private let current = NIOLockedValueBox<RedisConnection?>(nil)
    let states = RedisStateBroadcaster()

    init(
        configuration: RedisConnectionConfiguration,
        reconnectPolicy: RedisReconnectPolicy,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metrics: RedisMetrics,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    ) {
        self.configuration = configuration
        self.reconnectPolicy = reconnectPolicy
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.metrics = metrics
        self.onMessage = onMessage
    }

    /// The live connection, if there is one.
    var connection: RedisConnection? {
        guard let connection = current.withLockedValue({ $0 }), connection.isActive else { return nil }
        return connection
    }

    /// Runs until the task is cancelled, then reports `disconnected` and ends every state stream.
    /// `prepare` runs on every new connection before it is
    /// reported `connected` (the subscriber subscribes there); when it throws, the connection is
    /// closed and retried like a failed connect.
    func run(prepare: @escaping @Sendable (RedisConnection) async throws -> Void) async {
        var attempt = 0
        while !Task.isCancelled {
            do {
                let connection = try await RedisConnection.connect(
                    configuration: configuration,
                    eventLoop: eventLoopGroup.any(),
                    logger: logger,
                    metrics: metrics,
                    onMessage: onMessage
                ).get()
                do {
                    try await prepare(connection)
                } catch {
                    await connection.close()
                    throw error
                }
                current.withLockedValue { $0 = connection }
                states.publish(.connected)
                logger.info("connected to Redis", metadata: ["redis": "\(configuration.endpoint)"])
                attempt = 0
                await waitUntilClosed(connection)
                current.withLockedValue { $0 = nil }
                states.publish(.disconnected)
                if Task.isCancelled { break }
                logger.warning("Redis connection lost; reconnecting", metadata: ["redis": "\(configuration.endpoint)"])
            } catch {
                if Task.isCancelled { break }
                let level: Logger.Level = attempt == 0 ? .warning : .debug
                logger.log(
                    level: level,
                    "cannot connect to Redis; retrying",
                    metadata: ["redis": "\(configuration.endpoint)", "error": "\(error)", "attempt": "\(attempt + 1)"]
                )
            }
            let delay = reconnectPolicy.delay(attempt: attempt)
            attempt += 1
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
        }
        if let connection = current.withLockedValue({ connection in
            defer { connection = nil }
            return connection
        }) {
            await connection.close()
        }
        states.publish(.disconnected)
        states.finish()
    }

    /// Waits for `connection` to close; closes it when the task is cancelled.
    private func waitUntilClosed(_ connection: RedisConnection) async {
        await withTaskCancellationHandler {
            try? await connection.closeFuture.get()
        } onCancel: {
            connection.close()
        }
    }
}
