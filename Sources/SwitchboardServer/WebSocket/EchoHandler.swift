import NIOCore
import NIOWebSocket

/// Echoes every whole message back as one frame of the same kind (text as text, binary as binary).
///
/// Mounted behind `WebSocketSessionHandler` at `/autobahn` when `testing.echo_route` is on, so the
/// Autobahn conformance suite exercises the same pipeline and settings as `/ws`.
package final class EchoHandler: ChannelInboundHandler {
    package typealias InboundIn = WebSocketMessage
    package typealias OutboundOut = WebSocketFrame

    /// Whether a write is waiting for the flush at the end of this read burst.
    private var needsFlush = false

    /// An echo handler.
    package init() {}

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame: WebSocketFrame
        switch Self.unwrapInboundIn(data) {
        case .text(let payload):
            frame = WebSocketFrame(fin: true, opcode: .text, data: payload)
        case .binary(let payload):
            frame = WebSocketFrame(fin: true, opcode: .binary, data: payload)
        }
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        needsFlush = true
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}

@available(*, unavailable)
extension EchoHandler: Sendable {}
