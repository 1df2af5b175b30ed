import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

extension HTTPEdge {
    /// The node's edge from its configuration. Raises the soft file descriptor limit to the hard one
    /// first (process-wide) and clamps the pending-connection total to its share of the limit; logs both.
    static func build(_ configuration: SwitchboardConfiguration, logger: Logger) -> HTTPEdge {
        let descriptors = FileDescriptorLimit.raiseSoftLimitToHard()
        let limits = PendingConnectionLimits.effective(
            perAddress: configuration.server.maxPendingConnectionsPerAddress,
            total: configuration.server.maxPendingConnections,
            fileDescriptorLimit: descriptors?.soft
        )
        var metadata: Logger.Metadata = [
            "max_pending_connections": "\(limits.total)",
            "max_pending_connections_per_address": "\(limits.perAddress)",
            "request_timeout": "\(DurationText.format(configuration.server.requestTimeout))",
            "trusted_proxies": "\(configuration.server.trustedProxies)",
        ]
        if let descriptors {
            metadata["nofile_soft"] = "\(descriptors.soft)"
            metadata["nofile_hard"] = "\(descriptors.hard)"
            metadata["nofile_soft_at_start"] = "\(descriptors.before)"
        }
        if limits.total < configuration.server.maxPendingConnections {
            logger.warning(
                "server.max_pending_connections lowered to half of what the file descriptor limit leaves; raise ulimit -n",
                metadata: metadata
            )
        } else {
            logger.info("HTTP edge limits", metadata: metadata)
        }
        return HTTPEdge(
            registry: PendingConnectionRegistry(limits: limits),
            requestTimeout: configuration.server.requestTimeout,
            trustedProxies: configuration.server.trustedProxies
        )
    }

    /// `metrics.port`: a listener serving only `GET /metrics`, on the main listener's host, guarded
    /// by this edge like the main one (its connections count towards the same limits).
    func metricsListener(
        port: Int,
        host: String,
        metrics: NodeMetrics,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) -> some Service {
        let router = Router()
        router.addMetricsRoute(metrics)
        return Application(
            router: router,
            server: HTTPServerBuilder { [self] responder in
                HTTPEdgeChannel(base: HTTP1Channel(responder: responder), edge: self)
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "switchboard"),
            onServerRunning: { channel in
                logger.info("metrics listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
            },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
    }
}
