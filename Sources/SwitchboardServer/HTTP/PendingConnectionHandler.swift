import Logging
import NIOCore
import NIOHTTP1

/// Guards a connection from accept until it upgrades to WebSocket or closes (PROTOCOL.md §9):
/// - `server.request_timeout`: while no request is being answered (from accept, and from the end of
///   each response) a complete request head must arrive within the timeout, or the connection is
///   closed. Bytes that trickle in without completing a head (slowloris) do not reset it.
/// - the pending-connection limits: the connection is counted in the ``PendingConnectionRegistry``,
///   idle while it waits for a head (evictable by a newcomer), busy while a request is answered.
/// - a malformed request: NIO's `HTTPServerProtocolErrorHandler` (just before this handler) has
///   written `400`; this handler closes the connection. Without that handler in the pipeline
///   (Hummingbird's plain HTTP/1 channel answers parse errors itself) the error is passed on.
///
/// It sits right after the HTTP decoder (and error handler), before the upgrader, and removes itself
/// when the `101 Switching Protocols` head passes: the WebSocket timeouts take over from there. In
/// the moment of the upgrade raw bytes pass through it (the decoder is already gone), hence `Any`.
final class PendingConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    typealias InboundOut = Any
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    /// Whose `X-Forwarded-For` this connection's requests may carry (read by ``ClientAddress/of(_:channel:)``).
    let trustedProxies: TrustedProxies
    private let registry: PendingConnectionRegistry
    private let requestTimeout: TimeAmount
    private let closesOnParseError: Bool
    private let logger: Logger

    private var id: PendingConnectionRegistry.ID?
    private var isFinished = false
    /// The 101 has been written: leave the pipeline once it is flushed.
    private var isUpgrading = false
    /// Request heads received whose responses have not ended.
    private var requestsInFlight = 0
    private var timeout: Scheduled<Void>?

    init(
        registry: PendingConnectionRegistry,
        requestTimeout: TimeAmount,
        trustedProxies: TrustedProxies,
        closesOnParseError: Bool,
        logger: Logger
    ) {
        self.registry = registry
        self.requestTimeout = requestTimeout
        self.trustedProxies = trustedProxies
        self.closesOnParseError = closesOnParseError
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head? = unwrapInboundIn(data) as? HTTPServerRequestPart, !isFinished {
            requestsInFlight += 1
            if requestsInFlight == 1 {
                timeout?.cancel()
                timeout = nil
                if let id { registry.markBusy(id) }
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data) as? HTTPServerResponsePart
        context.write(data, promise: promise)
        switch part {
        case .head(let head)? where head.status == .switchingProtocols:
            // Upgraded: `websocket.max_connections` counts it now, and its own timeouts guard it.
            // Leaving the pipeline waits for the flush: the 101 comes as one writeAndFlush, and a
            // handler removed between its write and its flush would swallow the flush.
            finish()
            isUpgrading = true
        case .end? where !isFinished && requestsInFlight > 0:
            requestsInFlight -= 1
            if requestsInFlight == 0 {
                if let id { registry.markIdle(id) }
                armTimeout(context: context)
            }
        default:
            break
        }
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        if isUpgrading {
            isUpgrading = false
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown: a connection waiting for a request head has nothing to finish. (One
        // answering a request is left to Hummingbird, which closes it after the response.)
        if event is ChannelShouldQuiesceEvent, !isFinished, requestsInFlight == 0 {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard closesOnParseError, error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // The 400 is written (and flushed) already; nothing more will be read from this connection.
        logger.debug("malformed HTTP request: 400 and close", metadata: ["peer": "\(context.remoteAddress?.description ?? "?")"])
        context.close(promise: nil)
    }

    private func start(context: ChannelHandlerContext) {
        guard id == nil, !isFinished else { return }
        let key = ClientAddress.limitKey(peer: context.channel.remoteAddress, trusted: trustedProxies)
        guard let id = registry.admit(context.channel, key: key) else {
            isFinished = true
            logger.debug(
                "pending connection refused: every connection over the limit is busy",
                metadata: ["peer": "\(context.remoteAddress?.description ?? "?")"]
            )
            context.close(promise: nil)
            return
        }
        self.id = id
        armTimeout(context: context)
    }

    private func armTimeout(context: ChannelHandlerContext) {
        timeout?.cancel()
        let registry = self.registry
        let logger = self.logger
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: requestTimeout) { [self] in
            timeout = nil
            guard !isFinished, requestsInFlight == 0 else { return }
            registry.recordTimeout()
            logger.debug(
                "no request head within server.request_timeout: closing",
                metadata: ["peer": "\(context.remoteAddress?.description ?? "?")"]
            )
            context.close(promise: nil)
        }
    }

    /// Stops counting and timing this connection (closed, upgraded or removed).
    private func finish() {
        guard !isFinished else { return }
        isFinished = true
        timeout?.cancel()
        timeout = nil
        if let id { registry.remove(id) }
        id = nil
    }
}

@available(*, unavailable)
extension PendingConnectionHandler: Sendable {}
