import NIOCore
import NIOWebSocket
import SwiftProtobuf
import SwitchboardCore
import SwitchboardProto

/// The application end of a `/ws` connection: decodes each whole message and hands it to the switchboard.
///
/// Runs on the connection's event loop with no hop per message. Rate limiting lives here because it is
/// per connection state that needs no lock.
final class SignalingHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketMessage
    typealias OutboundOut = WebSocketFrame

    private let switchboard: any SignalingEngine
    private let identity: UserIdentity
    private let connection: ConnectionInfo
    private let messagesPerSecond: Int
    private let batcher: FlushBatcher
    private var session: Session?
    private var bucket: TokenBucket
    /// Whether this connection has begun a read burst that `channelReadComplete` must end.
    private var readingBurst = false

    init(
        switchboard: any SignalingEngine,
        identity: UserIdentity,
        connection: ConnectionInfo,
        messagesPerSecond: Int,
        batcher: FlushBatcher
    ) {
        self.switchboard = switchboard
        self.batcher = batcher
        self.identity = identity
        self.connection = connection
        self.messagesPerSecond = messagesPerSecond
        self.bucket = TokenBucket(
            capacity: messagesPerSecond,
            per: .seconds(1),
            now: SwitchboardClock.system.monotonicNanoseconds()
        )
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { register(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        register(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if readingBurst {
            readingBurst = false
            batcher.endReading(on: context.eventLoop)
        }
        if let session { switchboard.disconnect(session) }
        session = nil
        context.fireChannelInactive()
    }

    /// Graceful shutdown: tell the client to reconnect (to another node) with 1001.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            context.closeWebSocket(code: .goingAway, reason: "node shutting down")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        if !readingBurst {
            readingBurst = true
            batcher.beginReading(on: context.eventLoop)
        }
        let payload: ByteBuffer
        switch unwrapInboundIn(data) {
        case .text:
            return reply(.error(.invalidMessage, message: "send ChatMessage protobuf in binary frames"))
        case .binary(let buffer):
            payload = buffer
        }
        let message: ChatMessage
        do {
            message = try payload.withUnsafeReadableBytes { try ChatMessage(serializedBytes: $0.bytes) }
        } catch {
            return reply(.error(.invalidMessage, message: "frame is not a ChatMessage: \(error)"))
        }
        if let pong = message.heartbeatReply {
            context.reportWebSocketActivity()
            return session.outlet.deliver(pong)
        }
        guard bucket.take(now: SwitchboardClock.system.monotonicNanoseconds()) else {
            return reply(.error(.rateLimited, message: "more than \(messagesPerSecond) messages per second"))
        }
        switchboard.receive(message, from: session)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if readingBurst {
            readingBurst = false
            batcher.endReading(on: context.eventLoop)
        }
        context.fireChannelReadComplete()
    }

    private func register(_ context: ChannelHandlerContext) {
        guard session == nil else { return }
        session = switchboard.connect(identity, connection: connection, outlet: ChannelOutlet(channel: context.channel, batcher: batcher))
    }

    private func reply(_ notice: Notice) {
        guard let session else { return }
        switchboard.metrics.notice(notice)
        session.outlet.deliver(notice.message(to: identity.id, now: SwitchboardClock.system.nowMilliseconds()))
    }
}
