import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A Redis client with one pipelined command connection that it keeps alive: a `Service` whose
/// ``run()`` connects, and reconnects with exponential backoff whenever the connection drops.
///
/// While there is no connection, commands fail at once with ``RedisError/Code/unavailable``
/// (they never wait for a reconnect); commands in flight when the connection drops fail with
/// ``RedisError/Code/connectionClosed``. Listen to ``stateChanges()`` to act after a reconnect
/// (for example, to register again what a restarted server forgot).
///
/// ```swift
/// let client = try RedisClient(url: "redis://127.0.0.1:6379", logger: logger)
/// // run it in a ServiceGroup, then:
/// let value = try await client.execute("GET", "key")
/// ```
package final class RedisClient: Service, RedisCommandSender {
    private let supervisor: RedisConnectionSupervisor

    /// A client for `configuration`; it connects when ``run()`` starts. Its commands are measured
    /// in `metrics` (see ``RedisMetrics``).
    package init(
        configuration: RedisConnectionConfiguration,
        reconnectPolicy: RedisReconnectPolicy = RedisReconnectPolicy(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisWire"),
        metrics: RedisMetrics = RedisMetrics()
    ) {
        supervisor = RedisConnectionSupervisor(
            configuration: configuration,
            reconnectPolicy: reconnectPolicy,
            eventLoopGroup: eventLoopGroup,
            logger: logger,
            metrics: metrics,
            onMessage: nil
        )
    }

    /// A client for `redis://[[user]:password@]host[:port][/db]`.
    package convenience init(
        url: String,
        reconnectPolicy: RedisReconnectPolicy = RedisReconnectPolicy(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisWire"),
        metrics: RedisMetrics = RedisMetrics()
    ) throws(RedisError) {
        self.init(
            configuration: try RedisConnectionConfiguration(url: url),
            reconnectPolicy: reconnectPolicy,
            eventLoopGroup: eventLoopGroup,
            logger: logger,
            metrics: metrics
        )
    }

    /// Connects and keeps connected until the task is cancelled or a graceful shutdown begins;
    /// then closes the connection. Run it once.
    package func run() async throws {
        let supervisor = self.supervisor
        await cancelWhenGracefulShutdown {
            await supervisor.run { _ in }
        }
    }

    /// `true` while there is a live connection.
    package var isConnected: Bool { supervisor.connection != nil }

    /// The current state, then every change (`connected` after each (re)connect, `disconnected`
    /// after each drop), until the caller stops iterating or ``run()`` returns.
    package func stateChanges() -> AsyncStream<RedisConnectionState> {
        supervisor.states.stream()
    }

    /// Sends `command` on the current connection; see ``RedisConnection/send(_:)``. Fails with
    /// ``RedisError/Code/unavailable`` when there is no connection.
    package func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard let connection = supervisor.connection else {
            return supervisor.eventLoopGroup.any().makeFailedFuture(Self.unavailable)
        }
        return connection.send(command)
    }

    /// Sends `commands` pipelined (one flush); one future per command, in order.
    package func send(batch commands: [[RESPArgument]]) -> [EventLoopFuture<RESPValue>] {
        guard let connection = supervisor.connection else {
            let eventLoop = supervisor.eventLoopGroup.any()
            return commands.map { _ in eventLoop.makeFailedFuture(Self.unavailable) }
        }
        return connection.send(batch: commands)
    }

    /// Sends `commands` pipelined (one flush); `onReply` gets each one's index and result, in order.
    package func send(batch commands: [[RESPArgument]], onReply: @escaping RedisBatchCallback) {
        guard let connection = supervisor.connection else {
            for index in commands.indices { onReply(index, .failure(Self.unavailable)) }
            return
        }
        connection.send(batch: commands, onReply: onReply)
    }

    private static let unavailable = RedisError(code: .unavailable, message: "not connected to Redis")
}
