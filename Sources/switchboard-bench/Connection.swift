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
        if authority.hasPrefix("[") {   // [::1]:8080
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

/// The last handler of an upgraded connection: hands binary frames to the ``Bench`` (all on the one event
/// loop), answers pings, and gives the bench a way to write without going through `Channel` (no hop checks).
final class BenchConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Clients must mask (RFC 6455 §5.3); an all-zero key is valid and keeps masking free, as in wsload.
    static let maskKey = WebSocketMaskingKey([0, 0, 0, 0] as [UInt8])!

    private let bench: Bench
    let slot: Int
    private var context: ChannelHandlerContext?

    init(bench: Bench, slot: Int) {
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
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: Self.maskKey, data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self).map(Int.init) ?? 1005
            bench.serverClosed(slot: slot, code: code)
            let close = WebSocketFrame(
                fin: true, opcode: .connectionClose, maskKey: Self.maskKey,
                data: frame.unmaskedData.getSlice(at: frame.unmaskedData.readerIndex, length: min(2, frame.unmaskedData.readableBytes)) ?? ByteBuffer()
            )
            context.writeAndFlush(Self.wrapOutboundOut(close), promise: nil)
            context.close(promise: nil)
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

extension Bench {
    /// Opens one authenticated WebSocket for `user` to `url`; the future succeeds once the upgrade is done and
    /// a ``BenchConnectionHandler`` for `slot` is in the pipeline.
    func connect(slot: Int, user: String, url: WebSocketURL, expiresAt: Int64) -> EventLoopFuture<Void> {
        let token = signer.token(user: user, name: nil, avatar: nil, expiresAt: expiresAt)
        let upgraded = loop.makePromise(of: Void.self)
        let bench = NIOLoopBound(self, eventLoop: loop)
        let target = url.target(token: token)
        let hostHeader = "\(url.host):\(url.port)"
        let urlText = url.description
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                let upgrader = NIOTypedWebSocketClientUpgrader<Bool>(
                    maxFrameSize: 1 << 20,
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers(
                                NIOWebSocketFrameAggregator(
                                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                    maxAccumulatedFrameSize: 1 << 22
                                ),
                                BenchConnectionHandler(bench: bench.value, slot: slot)
                            )
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
                configuration.leftOverBytesStrategy = .forwardBytes   // frames right behind the 101 are kept
                return channel.eventLoop.makeCompletedFuture {
                    let result = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: configuration
                    )
                    result.whenComplete { outcome in
                        switch outcome {
                        case .success(true): upgraded.succeed()
                        case .success(false): break   // UpgradeRefusalHandler reports the status
                        case .failure(let error): upgraded.fail(error)
                        }
                    }
                }
            }
        bootstrap.connect(host: url.host, port: url.port).whenComplete { outcome in
            switch outcome {
            case .success(let channel):
                // A failed upgrade leaves the TCP connection open: close it.
                upgraded.futureResult.whenFailure { _ in channel.close(promise: nil) }
            case .failure(let error):
                upgraded.fail(error)
            }
        }
        return upgraded.futureResult
    }
}
