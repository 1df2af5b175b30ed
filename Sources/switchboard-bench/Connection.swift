import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// `ws://host[:port][/path]`.
struct WebSocketURL: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var path: String

    init?(_ text: String) {
        guard text.hasPrefix("ws://") else { return nil }
        let rest = text.dropFirst(5)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        var path = String(rest.dropFirst(authority.count))
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        let host: Substring
        let port: Int
        if authority.hasPrefix("[") {  // [::1]:8080
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = 80
            } else {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = value
        } else {
            host = authority
            port = 80
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
        self.path = path
    }

    var description: String { "ws://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }

    /// The request target with `token` added to the query.
    func target(token: String) -> String {
        path + (path.contains("?") ? "&" : "?") + "token=" + token
    }
}

enum BenchError: Error, CustomStringConvertible {
    case refused(url: String, status: HTTPResponseStatus)
    case closedDuringUpgrade(url: String)
    case setup(String)
    case selfCheck(String)

    var description: String {
        switch self {
        case .refused(let url, let status):
            let hint = status == .unauthorized ? " (wrong --secret / SWITCHBOARD_JWT_SECRET?)" : ""
            return "upgrade refused by \(url): HTTP \(status.code) \(status.reasonPhrase)\(hint)"
        case .closedDuringUpgrade(let url): return "connection to \(url) closed during the WebSocket upgrade"
        case .setup(let message): return message
        case .selfCheck(let message): return "self-check failed: \(message)"
        }
    }
}

/// Installed when the server answers the upgrade request with something other than 101: turns the response
/// status into an error and closes the connection.
final class UpgradeRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<Void>
    private let url: String

    init(promise: EventLoopPromise<Void>, url: String) {
        self.promise = promise
        self.url = url
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = Self.unwrapInboundIn(data) {
            promise.fail(BenchError.refused(url: url, status: head.status))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(BenchError.closedDuringUpgrade(url: url))
        context.fireChannelInactive()
    }
}

/// What a ``BenchConnectionHandler`` reports to: the load generator (``Bench``) or the abuse run's pair
/// (``AbusePair``). Every call comes on the connection's event loop, the delegate's own.
protocol ConnectionDelegate: AnyObject {
    func attach(_ handler: BenchConnectionHandler<Self>, to slot: Int)
    func received(_ data: ByteBuffer, on slot: Int)
    func readComplete(on slot: Int)
    func receivedTextFrame(on slot: Int)
    func serverClosed(slot: Int, code: Int)
    func inactive(slot: Int)
    func connectionError(_ error: any Error, slot: Int)
}

/// The last handler of an upgraded connection: hands binary frames to its delegate (all on the one event
/// loop), answers pings and the close handshake, and gives the delegate a way to write without going through
/// `Channel` (no hop checks). Generic over the delegate, so the hot path has no dynamic dispatch.
final class BenchConnectionHandler<Delegate: ConnectionDelegate>: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let bench: Delegate
    let slot: Int
    private var context: ChannelHandlerContext?

    init(bench: Delegate, slot: Int) {
        self.bench = bench
        self.slot = slot
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        bench.attach(self, to: slot)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            bench.received(frame.unmaskedData, on: slot)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: WebSocketClient.maskKey, data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self).map(Int.init) ?? 1005
            bench.serverClosed(slot: slot, code: code)
            WebSocketClient.answerClose(frame, context: context)
        case .text:
            bench.receivedTextFrame(on: slot)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        bench.readComplete(on: slot)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        bench.inactive(slot: slot)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        bench.connectionError(error, slot: slot)
        context.close(promise: nil)
    }

    /// Queues a frame (no flush).
    @inline(__always)
    func write(_ frame: WebSocketFrame) {
        context?.write(Self.wrapOutboundOut(frame), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(promise: promise)
        return promise.futureResult
    }
}

/// The WebSocket client side every mode shares: the upgrade, the masking key, the close handshake.
enum WebSocketClient {
    /// Clients must mask (RFC 6455 §5.3); an all-zero key is valid and keeps masking free, as in wsload.
    static let maskKey = WebSocketMaskingKey([0, 0, 0, 0] as [UInt8])!

    /// Answers a close frame with the same code and closes the connection.
    static func answerClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        let data = frame.unmaskedData
        let close = WebSocketFrame(
            fin: true,
            opcode: .connectionClose,
            maskKey: maskKey,
            data: data.getSlice(at: data.readerIndex, length: min(2, data.readableBytes)) ?? ByteBuffer()
        )
        context.writeAndFlush(NIOAny(close), promise: nil)
        context.close(promise: nil)
    }

    /// Opens one WebSocket to `url` with `token` in the query. The future succeeds with the channel once the
    /// 101 is in and `addHandlers` has put its handlers behind a frame aggregator (on the channel's loop); it
    /// fails with ``BenchError/refused(url:status:)`` when the node answers something else (the connection is
    /// closed then).
    ///
    /// - Parameters:
    ///   - localAddress: the source address to connect from (another 127.0.0.x: an attacker of its own).
    ///   - receiveBufferSize: `SO_RCVBUF`, set before the connect so that the TCP window is that small.
    static func connect(
        on loop: any EventLoop,
        url: WebSocketURL,
        token: String,
        localAddress: SocketAddress? = nil,
        receiveBufferSize: Int? = nil,
        addHandlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let upgraded = loop.makePromise(of: Void.self)
        let connected = loop.makePromise(of: (any Channel).self)
        let target = url.target(token: token)
        let hostHeader = "\(url.host):\(url.port)"
        let urlText = url.description
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if let localAddress { bootstrap = bootstrap.bind(to: localAddress) }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        bootstrap = bootstrap.channelInitializer { channel in
            let upgrader = NIOTypedWebSocketClientUpgrader<Bool>(
                maxFrameSize: 1 << 20,
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0,
                                maxAccumulatedFrameCount: 1024,
                                maxAccumulatedFrameSize: 1 << 22
                            )
                        )
                        try addHandlers(channel)
                        return true
                    }
                }
            )
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "User-Agent", value: "switchboard-bench")
            let upgrade = NIOTypedHTTPClientUpgradeConfiguration<Bool>(
                upgradeRequestHead: head,
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            UpgradeRefusalHandler(promise: upgraded, url: urlText)
                        )
                        return false
                    }
                }
            )
            var configuration = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgrade)
            configuration.leftOverBytesStrategy = .forwardBytes  // frames right behind the 101 are kept
            return channel.eventLoop.makeCompletedFuture {
                let result = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                    configuration: configuration
                )
                result.whenComplete { outcome in
                    switch outcome {
                    case .success(true): upgraded.succeed()
                    case .success(false): break  // UpgradeRefusalHandler reports the status
                    case .failure(let error): upgraded.fail(error)
                    }
                }
            }
        }
        bootstrap.connect(host: url.host, port: url.port).whenComplete { outcome in
            switch outcome {
            case .success(let channel):
                upgraded.futureResult.whenComplete { result in
                    switch result {
                    case .success:
                        connected.succeed(channel)
                    case .failure(let error):
                        channel.close(promise: nil)  // a failed upgrade leaves the TCP connection open
                        connected.fail(error)
                    }
                }
            case .failure(let error):
                upgraded.fail(error)
                connected.fail(error)
            }
        }
        return connected.futureResult
    }
}

extension Bench {
    /// Opens one authenticated WebSocket for `user` to `url`; the future succeeds once the upgrade is done and
    /// a ``BenchConnectionHandler`` for `slot` is in the pipeline.
    func connect(slot: Int, user: String, url: WebSocketURL, expiresAt: Int64) -> EventLoopFuture<Void> {
        let token = signer.token(user: user, name: nil, avatar: nil, expiresAt: expiresAt)
        let bench = NIOLoopBound(self, eventLoop: loop)
        return WebSocketClient.connect(on: loop, url: url, token: token) { channel in
            try channel.pipeline.syncOperations.addHandler(BenchConnectionHandler(bench: bench.value, slot: slot))
        }.map { _ in }
    }
}
