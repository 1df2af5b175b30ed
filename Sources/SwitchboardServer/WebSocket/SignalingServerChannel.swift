import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import SwitchboardCore

/// The node's child channel: HTTP/1.1 served by Hummingbird's router, and a WebSocket upgrade after
/// which the connection is a plain NIO pipeline (`WebSocketSessionHandler` and the route's application), so a
/// message is decoded, routed and written without a task hop.
struct SignalingServerChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case webSocket(any Channel)
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, WebSocketGate.Refusal)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let gate: WebSocketGate
    let settings: WebSocketSettings
    /// `settings` as every connection's session handler reads them, shared.
    let limits: WebSocketSessionLimits
    /// Makes the application end of an accepted `/ws` connection, on its event loop, before the 101 is
    /// written: the session it registers is reachable by the time the client can send to it. It releases
    /// the acceptance's slot when the channel closes.
    let makeSignaling: @Sendable (WebSocketGate.Acceptance, any Channel) -> WebSocketApplication

    init(
        responder: @escaping HTTPChannelHandler.Responder,
        gate: WebSocketGate,
        settings: WebSocketSettings,
        makeSignaling: @escaping @Sendable (WebSocketGate.Acceptance, any Channel) -> WebSocketApplication
    ) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.gate = gate
        self.settings = settings
        self.limits = WebSocketSessionLimits(settings)
        self.makeSignaling = makeSignaling
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try ReadBuffering.request.apply(to: channel)
            let verdict = NIOLoopBoundBox<Result<WebSocketGate.Acceptance, WebSocketGate.Refusal>?>(
                nil,
                eventLoop: channel.eventLoop
            )
            let application = NIOLoopBoundBox<WebSocketApplication?>(nil, eventLoop: channel.eventLoop)
            // WebSocketSessionHandler answers framing errors itself, with one close frame at most.
            let upgrader = FramedWebSocketUpgrader<UpgradeResult>(
                maxFrameSize: settings.maxMessageBytes,
                shouldUpgrade: { [gate, makeSignaling] channel, head in
                    let result = gate.admit(head, channel: channel)
                    verdict.value = result
                    guard case .success(let acceptance) = result else { return channel.eventLoop.makeSucceededFuture(nil) }
                    let app: WebSocketApplication
                    switch acceptance.route {
                    case .signaling:
                        app = makeSignaling(acceptance, channel)
                    case .echo:
                        channel.closeFuture.whenComplete { _ in acceptance.slot.release() }
                        app = WebSocketApplication(handler: EchoHandler())
                    }
                    application.value = app
                    // The 101 goes out once the session can be reached from anywhere (PROTOCOL.md §9).
                    let headers = acceptance.responseHeaders
                    return app.reachable.map { $0.map { headers } } ?? channel.eventLoop.makeSucceededFuture(headers)
                },
                upgradePipelineHandler: { [limits] channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let app = application.value else { throw ChannelError.inappropriateOperationForState }
                        // Hummingbird allows half-closure for HTTP; a WebSocket whose peer's TCP is gone is gone.
                        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
                        try ReadBuffering.webSocket.apply(to: channel)
                        let session = WebSocketSessionHandler(limits: limits, receiver: app.receiver)
                        try channel.pipeline.syncOperations.addHandler(session)
                        if let handler = app.handler { try channel.pipeline.syncOperations.addHandler(handler) }
                        return UpgradeResult.webSocket(channel)
                    }
                }
            )
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try ReadBuffering.http.apply(to: channel)
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if case .failure(let refusal)? = verdict.value { return UpgradeResult.refused(http, refusal) }
                        return UpgradeResult.notUpgraded(http)
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: upgradeConfiguration)
            pipeline.enablePipelining = false
            // NIO's HTTPServerProtocolErrorHandler answers a malformed request 400, and HTTPEdgeChannel's
            // PendingConnectionHandler then closes. (It was off as in Hummingbird's HTTP1Channel, whose
            // HTTP loop writes that 400 itself; but the first request's parse error happens before the
            // upgrade decision, where nothing answered or closed.)
            pipeline.enableErrorHandling = true
            pipeline.enableResponseHeaderValidation = false
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            // An application made for an upgrade that then failed is told so: it has no session handler
            // to tell it when the connection ends.
            result.whenFailure { _ in application.value?.receiver?.upgradeFailed() }
            return Value(upgradeResult: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let refusal):
                await Self.write(refusal, to: http, logger: logger)
            case .webSocket:
                // The NIO pipeline does all the work from here on; no task waits per connection (that
                // would cost memory per idle socket). Graceful shutdown still reaches the channel: the
                // server's quiescing helper tracks channels, not tasks.
                break
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    private static func write(
        _ refusal: WebSocketGate.Refusal,
        to http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>,
        logger: Logger
    ) async {
        do {
            try await http.executeThenClose { _, outbound in
                var body = ByteBuffer()
                body.writeString(refusal.message + "\n")
                let head = HTTPResponse(
                    status: refusal.status,
                    headerFields: [
                        .connection: "close", .contentType: "text/plain; charset=utf-8", .contentLength: "\(body.readableBytes)",
                    ]
                )
                try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
            }
        } catch {
            logger.trace("could not write refusal", metadata: ["error": "\(error)"])
        }
    }

    /// NIO only upgrades the first request of a connection; a later upgrade request on a keep-alive
    /// connection is redirected to the same URI on a new connection (as Hummingbird does).
    private static func redirectingLateUpgrades(
        _ responder: @escaping HTTPChannelHandler.Responder
    ) -> HTTPChannelHandler.Responder {
        struct RedirectClose: Error {}
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                return try await responder(request, writer, channel)
            }
            let location = request.uri.query.map { "\(request.uri.path)?\($0)" } ?? request.uri.path
            try await writer.writeResponse(
                HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location])
            )
            throw RedirectClose()
        }
    }
}
