import NIOCore
import NIOWebSocket
import SwitchboardCore
import SwitchboardProto

/// Delivers messages to one WebSocket channel from any thread.
///
/// The message is encoded on the caller's thread; the channel hops to its event loop when needed, so
/// writes from one caller keep their order.
struct ChannelOutlet: SessionOutlet {
    let channel: any Channel

    func deliver(_ message: ChatMessage) {
        let bytes: [UInt8]
        do {
            bytes = try message.serializedBytes()
        } catch {
            return  // proto3 messages without required fields always serialize
        }
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: channel.allocator.buffer(bytes: bytes))
        channel.writeAndFlush(frame, promise: nil)
    }

    func close(code: UInt16, reason: String) {
        let request = WebSocketCloseRequest(code: WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        channel.triggerUserOutboundEvent(request, promise: nil)
    }
}
