import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import RedisWire
import ServiceLifecycle
import SwitchboardAuth
import SwitchboardCore
import SwitchboardRedis
import SwitchboardStorage

/// Builds the node from its configuration; `switchboard serve` and the tests share it.
///
/// Opens (and migrates) the call record store; everything else starts when the application runs.
/// The node's metrics are created in `metrics`, which `/metrics` renders: `switchboard serve` passes
/// the process-wide one (``bootstrapMetrics()``); by default each application has its own registry.
package func buildApplication(
    _ configuration: SwitchboardConfiguration,
    logger: Logger,
    metrics: PrometheusMetrics = PrometheusMetrics()
) async throws -> some ApplicationProtocol {
    let store = try CallRecordStores.open(url: configuration.database.url, logger: logger)
    try await store.migrate()
    let recordWriter = CallRecordWriter(
        store: store,
        maxQueued: configuration.records.maxQueued,
        metrics: metrics.factory,
        logger: logger
    )

    // Lives as long as the process.
    let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: configuration.server.eventLoopCount)
    let settings = SwitchboardSettings(
        nodeId: configuration.server.nodeID,
        ringTimeout: configuration.calls.ringTimeout,
        reconnectGrace: configuration.calls.reconnectGrace,
        invitesPerMinute: configuration.limits.invitesPerMinute
    )
    let scheduler = EventLoopScheduler(eventLoop: eventLoopGroup.next())
    let batcher = FlushBatcher(group: eventLoopGroup)
    let switchboard: Switchboard
    // A PostgreSQL store's pool is a service ahead of the writer: the group stops its services in
    // reverse order, so the writer drains its queue before the pool closes.
    // The hooks' service comes first: stopped last, it lets the call events of the shutdown go.
    let hooks = NodeHooks(configuration.hooks, group: eventLoopGroup, metrics: metrics.factory, logger: logger)
    var services: [any Service] = hooks.services
    if let postgres = store as? PostgresCallRecordStore { services.append(postgres) }
    services.append(recordWriter)
    if let redis = try configuration.redis.endpoint() {
        let cluster = ClusterNode(
            endpoint: redis,
            signalsChannel: configuration.redis.channels.webrtcSignals,
            heartbeatInterval: configuration.redis.heartbeatInterval,
            bufferLimits: configuration.redis.bufferLimits,
            publishWindow: configuration.redis.publishWindow,
            settings: settings,
            eventLoopGroup: eventLoopGroup,
            scheduler: scheduler,
            records: recordWriter,
            events: CallEventLog(webhook: hooks.webhook),
            permission: hooks.permission,
            maxBlocksPerUser: configuration.blocks.maxPerUser,
            metrics: SignalingMetrics(factory: metrics.factory),
            redisMetrics: RedisMetrics(factory: metrics.factory),
            logger: logger,
            beforeDelivery: {
                batcher.batchUntilEndOfTick(on: $0)
            }
        )
        switchboard = cluster.engine
        services += cluster.services
    } else {
        switchboard = Switchboard(
            settings: settings,
            scheduler: scheduler,
            records: recordWriter,
            events: CallEventLog(webhook: hooks.webhook),
            permission: hooks.permission,
            maxBlocksPerUser: configuration.blocks.maxPerUser,
            metrics: SignalingMetrics(factory: metrics.factory)
        )
    }
    let authenticator = JWTAuthenticator(secret: configuration.jwtSecret)
    let iceServers = ICEServerIssuer(
        stunURLs: configuration.ice.stunURLs,
        turnURLs: configuration.turn.urls,
        secret: configuration.turn.secret,
        ttl: configuration.turn.ttl
    )
    let gate = WebSocketGate(
        authenticator: authenticator,
        maxConnections: configuration.websocket.maxConnections,
        upgradesPerSecond: configuration.limits.upgradesPerSecond,
        echoRoute: configuration.testing.echoRoute
    )
    let webSocketSettings = WebSocketSettings(
        maxMessageBytes: configuration.websocket.maxMessageBytes,
        readTimeout: configuration.websocket.readTimeout,
        writeTimeout: configuration.websocket.writeTimeout,
        maxPendingBytes: configuration.websocket.maxPendingBytes,
        pingInterval: configuration.websocket.pingInterval,
        pongTimeout: configuration.websocket.pongTimeout
    )
    let budgets = UserBudgets(
        messagesPerSecond: configuration.limits.messagesPerSecond,
        burst: configuration.limits.messagesBurst
    )
    let isCallIDTaken: SignalingHandler.CallIDCheck = { callId in
        await recordWriter.isTaken(callId: callId)
    }

    let edge = HTTPEdge.build(configuration, logger: logger)
    let nodeMetrics = NodeMetrics(metrics: metrics, switchboard: switchboard, gate: gate)
    if let metricsPort = configuration.metrics.port {
        services.append(
            edge.metricsListener(
                port: metricsPort,
                host: configuration.server.host,
                metrics: nodeMetrics,
                eventLoopGroup: eventLoopGroup,
                logger: logger
            )
        )
    }

    let router = Router()
    router.addSwitchboardRoutes(
        RouteDependencies(
            switchboard: switchboard,
            store: store,
            authenticator: authenticator,
            iceServers: iceServers,
            metrics: nodeMetrics
        ),
        servingMetrics: configuration.metrics.port == nil
    )
    router.addBlockRoutes(switchboard.blocks, authenticator: authenticator)
    if configuration.server.demo { router.addWebRoutes() }
    let signaling = SignalingHandler.Services(
        switchboard: switchboard,
        budgets: budgets,
        iceServers: iceServers,
        isCallIDTaken: isCallIDTaken,
        batcher: batcher
    )
    @Sendable func signalingChannel(_ responder: @escaping HTTPChannelHandler.Responder) -> SignalingServerChannel {
        SignalingServerChannel(responder: responder, gate: gate, settings: webSocketSettings) { acceptance, channel in
            SignalingHandler.application(
                for: acceptance,
                identity: acceptance.identity!,  // the gate authenticates every `/ws` acceptance
                channel: channel,
                services: signaling
            )
        }
    }
    let server = HTTPServerBuilder { responder in
        HTTPEdgeChannel(base: signalingChannel(responder), edge: edge)
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(
            address: .hostname(configuration.server.host, port: configuration.server.port),
            serverName: "switchboard"
        ),
        services: services,
        onServerRunning: { channel in
            logger.info(
                "switchboard listening",
                metadata: [
                    "address": "\(channel.localAddress?.description ?? "?")",
                    "node_id": "\(configuration.server.nodeID)",
                    "mode": "\(configuration.redis.isEnabled ? "cluster" : "single-node")",
                ]
            )
        },
        eventLoopGroupProvider: .shared(eventLoopGroup),
        logger: logger
    )
}

/// Routes swift-log to JSON lines on standard output at `level`.
package func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
}
