import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import SwitchboardCore
import SwitchboardStorage

/// Builds the node from its configuration; `switchboard serve` and the tests share it.
///
/// Opens (and migrates) the call record store; everything else starts when the application runs.
/// The node's metrics are created in `metrics`, which `/metrics` renders: `switchboard serve` passes
/// the process-wide one (``bootstrapMetrics()``); by default each application has its own registry.
public func buildApplication(
    _ configuration: SwitchboardConfiguration,
    logger: Logger,
    metrics: PrometheusMetrics = PrometheusMetrics()
) async throws -> some ApplicationProtocol {
    let store = try SQLiteCallRecordStore.open(url: configuration.database.url)
    try await store.migrate()
    let recordWriter = CallRecordWriter(store: store, logger: logger)

    let eventLoopGroup =
        configuration.server.threads == 0
        ? MultiThreadedEventLoopGroup.singleton
        : MultiThreadedEventLoopGroup(numberOfThreads: configuration.server.threads)  // lives as long as the process
    let switchboard = Switchboard(
        settings: SwitchboardSettings(
            nodeId: configuration.server.nodeID,
            ringTimeout: configuration.calls.ringTimeout,
            reconnectGrace: configuration.calls.reconnectGrace,
            invitesPerMinute: configuration.limits.invitesPerMinute
        ),
        scheduler: EventLoopScheduler(eventLoop: eventLoopGroup.next()),
        records: recordWriter,
        events: CallEventLog(),
        metrics: SignalingMetrics(factory: metrics.factory)
    )
    let authenticator = JWTAuthenticator(secret: configuration.jwtSecret)
    let gate = WebSocketGate(
        authenticator: authenticator,
        maxConnections: configuration.websocket.maxConnections,
        echoRoute: configuration.testing.echoRoute
    )
    let settings = WebSocketSettings(
        maxMessageBytes: configuration.websocket.maxMessageBytes,
        readTimeout: configuration.websocket.readTimeout,
        writeTimeout: configuration.websocket.writeTimeout,
        pingInterval: configuration.websocket.pingInterval,
        pongTimeout: configuration.websocket.pongTimeout
    )
    let messagesPerSecond = configuration.limits.messagesPerSecond
    let batcher = FlushBatcher(group: eventLoopGroup)

    let router = Router()
    router.addSwitchboardRoutes(
        RouteDependencies(
            switchboard: switchboard,
            store: store,
            authenticator: authenticator,
            metrics: NodeMetrics(metrics: metrics, switchboard: switchboard, gate: gate)
        )
    )
    let server = HTTPServerBuilder { responder in
        SignalingServerChannel(responder: responder, gate: gate, settings: settings) { identity, connection in
            SignalingHandler(
                switchboard: switchboard,
                identity: identity,
                connection: connection,
                messagesPerSecond: messagesPerSecond,
                batcher: batcher
            )
        }
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(
            address: .hostname(configuration.server.host, port: configuration.server.port),
            serverName: "switchboard"
        ),
        services: [recordWriter],
        onServerRunning: { channel in
            logger.info(
                "switchboard listening",
                metadata: [
                    "address": "\(channel.localAddress?.description ?? "?")",
                    "node_id": "\(configuration.server.nodeID)",
                    "mode": "single-node",
                ]
            )
        },
        eventLoopGroupProvider: .shared(eventLoopGroup),
        logger: logger
    )
}

/// Routes swift-log to JSON lines on standard output at `level`.
public func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
}
