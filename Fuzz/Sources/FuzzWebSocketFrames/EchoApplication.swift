import FuzzSupport
import NIOCore
import NIOWebSocket
import SwitchboardWebSocket

/// Stands in for the signaling handler: checks each message and writes it back, in a frame the session
/// handler must clean up; a text message "bye" asks for a close with an over-long reason.
final class EchoApplication: ChannelInboundHandler {
    typealias InboundIn = WebSocketMessage
    typealias OutboundOut = WebSocketFrame

    let maxMessageBytes: Int

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let payload = message.payload
        check(payload.readableBytes <= maxMessageBytes, "a message of \(payload.readableBytes) bytes")
        if case .text(let text) = message {
            let string = text.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) }
            check(string != nil, "a text message that is not UTF-8")
            if string == "bye" {
                context.closeWebSocket(code: .goingAway, reason: String(repeating: "é", count: 100))
                return
            }
        }
        let frame = WebSocketFrame(fin: false, rsv1: true, opcode: .binary, maskKey: [1, 2, 3, 4], data: payload)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
    }
}
