import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// What the node enforces on every connection before it upgrades (PROTOCOL.md §9): the request
/// timeout, the pending-connection limits (one registry for all of the node's listeners) and whose
/// `X-Forwarded-For` is believed.
struct HTTPEdge: Sendable {
    let registry: PendingConnectionRegistry
    /// `server.request_timeout`.
    let requestTimeout: Duration
    /// `server.trusted_proxies`.
    let trustedProxies: TrustedProxies

    /// Thrown by setup when the base channel's pipeline has no HTTP decoder to guard.
    struct NoHTTPDecoder: Error {}

    /// Adds a ``PendingConnectionHandler`` right after the HTTP request decoder (and NIO's protocol
    /// error handler, when there is one: then it also closes after that handler's 400).
    func install(on channel: any Channel, logger: Logger) throws {
        let operations = channel.pipeline.syncOperations
        let position: ChannelPipeline.SynchronousOperations.Position
        let closesOnParseError: Bool
        if let errorHandler = try? operations.handler(type: HTTPServerProtocolErrorHandler.self) {
            position = .after(errorHandler)
            closesOnParseError = true
        } else if let decoder = try? operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            position = .after(decoder)
            closesOnParseError = false
        } else {
            throw NoHTTPDecoder()
        }
        let handler = PendingConnectionHandler(
            registry: registry,
            requestTimeout: TimeAmount(requestTimeout),
            trustedProxies: trustedProxies,
            closesOnParseError: closesOnParseError,
            logger: logger
        )
        try operations.addHandler(handler, position: position)
    }
}

/// A server child channel (`SignalingServerChannel`, Hummingbird's `HTTP1Channel`) with the node's
/// ``HTTPEdge`` guarding each connection until it upgrades.
struct HTTPEdgeChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let edge: HTTPEdge

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // The base pipeline is built synchronously; the guard goes in before the channel is
        // registered, so it sees the channel become active (accept) and every byte read.
        base.setup(channel: channel, logger: logger).flatMapThrowing { [edge] value in
            try edge.install(on: channel, logger: logger)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
