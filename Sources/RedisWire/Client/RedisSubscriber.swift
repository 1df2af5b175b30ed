import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A dedicated pub/sub connection (RESP2 needs one: a subscribed connection takes no other
/// commands) that stays subscribed: a `Service` whose ``run()`` connects, subscribes to every
/// channel in ``channels``, and after a drop (a restart, `CLIENT KILL TYPE pubsub`) reconnects
/// with backoff and subscribes again.
///
/// `onMessage` is called on the connection's event loop for every message, in order, with no
/// task hop: keep it short and non-blocking (hand heavy work elsewhere).
///
/// Pub/sub is at-most-once: messages published while the subscriber is reconnecting are lost.
/// ``stateChanges()`` reports `connected` only once every channel is subscribed again.
package final class RedisSubscriber: Service, Sendable {
    private struct Subscriptions {
        var channels: Set<String>
        /// The connection the channels were last subscribed on.
        var connection: RedisConnection?
    }

    private let supervisor: RedisConnectionSupervisor
    private let subscriptions: NIOLockedValueBox<Subscriptions>
    private let pingInterval: Duration?

    /// A subscriber for `configuration` that listens to `channels`.
    ///
    /// - Parameters:
    ///   - pingInterval: how often to `PING` the idle connection, so that a silently dead
    ///     connection fails (by the command timeout) and is replaced; `nil` never pings.
    ///   - metrics: counts each message received (`direction="in"`) and times the connection's
    ///     commands (see ``RedisMetrics``).
    ///   - onMessage: called on the event loop with each message.
    package init(
        configuration: RedisConnectionConfiguration,
        channels: [String] = [],
        reconnectPolicy: RedisReconnectPolicy = RedisReconnectPolicy(),
        pingInterval: Duration? = .seconds(5),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisWire"),
        metrics: RedisMetrics = RedisMetrics(),
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) {
        let received = metrics.messagesIn
        supervisor = RedisConnectionSupervisor(
            configuration: configuration,
            reconnectPolicy: reconnectPolicy,
            eventLoopGroup: eventLoopGroup,
            logger: logger,
            metrics: metrics,
            onMessage: { message in
                received.increment()
                onMessage(message)
            }
        )
        subscriptions = NIOLockedValueBox(Subscriptions(channels: Set(channels)))
        self.pingInterval = pingInterval
    }

    /// Connects, subscribes, and keeps subscribed until the task is cancelled or a graceful
    /// shutdown begins; then closes the connection. Run it once.
    package func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.supervisor.run { connection in
                try await self.prepare(connection)
            }
        }
    }

    /// `true` while connected and subscribed.
    package var isConnected: Bool { supervisor.connection != nil }

    /// The current state, then every change (`connected` once (re)subscribed, `disconnected`
    /// after each drop), until the caller stops iterating or ``run()`` returns.
    package func stateChanges() -> AsyncStream<RedisConnectionState> {
        supervisor.states.stream()
    }

    /// The channels this subscriber listens to (and subscribes to again after each reconnect).
    package var channels: Set<String> {
        subscriptions.withLockedValue { $0.channels }
    }

    /// Adds `channels` and, when connected, subscribes to them, returning once the server confirmed.
    ///
    /// When not connected the channels are still added (and subscribed on connect), and this
    /// throws ``RedisError/Code/unavailable``.
    package func subscribe(to channels: [String]) async throws(RedisError) {
        guard !channels.isEmpty else { return }
        let connection = subscriptions.withLockedValue { subscriptions in
            subscriptions.channels.formUnion(channels)
            return subscriptions.connection
        }
        guard let connection, connection.isActive else {
            throw RedisError(code: .unavailable, message: "not connected to Redis; will subscribe on connect")
        }
        try await RedisError.mapping {
            try await connection.send(["SUBSCRIBE"] + channels.map { RESPArgument($0) }, replies: channels.count).get()
        }
    }

    /// Removes `channels` and, when connected, unsubscribes from them.
    package func unsubscribe(from channels: [String]) async throws(RedisError) {
        guard !channels.isEmpty else { return }
        let connection = subscriptions.withLockedValue { subscriptions in
            subscriptions.channels.subtract(channels)
            return subscriptions.connection
        }
        guard let connection, connection.isActive else { return }
        try await RedisError.mapping {
            try await connection.send(["UNSUBSCRIBE"] + channels.map { RESPArgument($0) }, replies: channels.count).get()
        }
    }

    /// Subscribes a new connection to every channel, then starts its pings.
    private func prepare(_ connection: RedisConnection) async throws {
        // Recording the connection and taking the channels in one step means a concurrent
        // `subscribe(to:)` either is in this snapshot or sends its own SUBSCRIBE on this connection.
        let channels = subscriptions.withLockedValue { subscriptions in
            subscriptions.connection = connection
            return subscriptions.channels.sorted()
        }
        if !channels.isEmpty {
            _ = try await connection.send(["SUBSCRIBE"] + channels.map { RESPArgument($0) }, replies: channels.count).get()
        }
        if let pingInterval {
            let interval = TimeAmount(pingInterval)
            let pings = connection.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                // A PING that gets no reply fails by the command timeout, which closes the connection.
                _ = connection.send(["PING"])
            }
            connection.closeFuture.whenComplete { _ in pings.cancel() }
        }
    }
}
