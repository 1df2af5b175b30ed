import Logging
import NIOCore
import RedisWire
import ServiceLifecycle
import SwitchboardCore

/// Everything a node needs to run in cluster mode, wired together: the Redis command connection, the
/// subscriber listening to `webrtc:signals` and this node's inbox, the engine, and the membership
/// (heartbeats, reaper). Run ``services`` in this order, before the server.
package struct ClusterNode: Sendable {
    package let engine: Switchboard
    package let services: [any Service]

    /// - Parameters:
    ///   - endpoint: the Redis server and its login.
    ///   - signalsChannel: `redis.channels.webrtc_signals`.
    ///   - bufferLimits: `redis.retry_*`, `redis.replay_*`, `redis.reorder_max_bytes`: what is kept per
    ///     other node.
    ///   - publishWindow: `redis.publish_window`: the least time between two `PUBLISH`es to one node.
    ///   - permission: the app's backend's say on invites (`hooks.invite_url`), if any.
    ///   - maxBlocksPerUser: `blocks.max_per_user`.
    ///   - beforeDelivery: runs on the subscriber's event loop (its argument) before each inbox message is
    ///     delivered (the server batches the socket writes of a burst of messages there).
    package init(
        endpoint: RedisEndpoint,
        signalsChannel: String,
        heartbeatInterval: Duration,
        commandTimeout: Duration = .seconds(2),
        bufferLimits: ClusterBufferLimits = .standard,
        publishWindow: Duration = .zero,
        settings: SwitchboardSettings,
        eventLoopGroup: any EventLoopGroup,
        scheduler: any TimerScheduler,
        records: any CallRecordSink,
        events: any CallEventSink,
        permission: (any InvitePermission)? = nil,
        maxBlocksPerUser: Int = 1000,
        metrics: SignalingMetrics = SignalingMetrics(),
        redisMetrics: RedisMetrics = RedisMetrics(),
        logger: Logger,
        beforeDelivery: @escaping @Sendable (any EventLoop) -> Void = { _ in }
    ) {
        let keys = ClusterKeys(signalsChannel: signalsChannel)
        let configuration = RedisConnectionConfiguration(
            endpoint: endpoint,
            connectTimeout: .seconds(2),
            commandTimeout: commandTimeout
        )
        let reconnect = RedisReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .seconds(1))
        let client = RedisClient(
            configuration: configuration,
            reconnectPolicy: reconnect,
            eventLoopGroup: eventLoopGroup,
            logger: logger,
            metrics: redisMetrics
        )
        let scripts = ClusterScripts(redis: client, keys: keys, node: settings.nodeId)
        // Delivery runs on one loop: the subscriber too, so that inbox envelopes are sequenced where they
        // arrive, with no hop per message.
        let deliveryLoop = eventLoopGroup.next()
        let delivery = ClusterDelivery(
            nodeId: settings.nodeId,
            redis: client,
            keys: keys,
            eventLoop: deliveryLoop,
            limits: bufferLimits,
            publishWindow: publishWindow,
            logger: logger
        )
        let subscriber = RedisSubscriber(
            configuration: configuration,
            channels: [keys.signalsChannel, keys.inbox(settings.nodeId)],
            reconnectPolicy: reconnect,
            pingInterval: .seconds(1),
            eventLoopGroup: deliveryLoop,
            logger: logger,
            metrics: redisMetrics
        ) { message in
            beforeDelivery(deliveryLoop)
            delivery.receive(message.payload, isBroadcast: message.channel == keys.signalsChannel)
        }
        let ports = ClusterPorts.redis(
            scripts,
            delivery: delivery,
            ringTimeout: settings.ringTimeout,
            reconnectGrace: settings.reconnectGrace,
            maxBlocksPerUser: maxBlocksPerUser,
            isReady: { client.isConnected && subscriber.isConnected }
        )
        let engine = Switchboard(
            settings: settings,
            cluster: ports,
            scheduler: scheduler,
            records: records,
            events: events,
            permission: permission,
            metrics: metrics,
            logger: logger
        )
        delivery.deliver(to: engine)
        self.engine = engine
        self.services = [
            client, subscriber,
            ClusterMembership(
                engine: engine,
                scripts: scripts,
                delivery: delivery,
                client: client,
                subscriber: subscriber,
                heartbeatInterval: heartbeatInterval,
                logger: logger
            ),
        ]
    }
}
