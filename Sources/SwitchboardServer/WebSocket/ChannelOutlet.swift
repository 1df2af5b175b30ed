import NIOCore
import NIOWebSocket
import SwitchboardCore
import SwitchboardProto

/// Delivers messages to one WebSocket channel from any thread.
///
/// The message is encoded on the caller's thread and written on the channel's event loop; writes from
/// one caller keep their order. Writes made while the loop reads a burst share one flush
/// (`FlushBatcher`).
struct ChannelOutlet: SessionOutlet {
    private let channel: any Channel
    private let target: NIOLoopBound<FlushBatcher.Target>
    private let batcher: FlushBatcher

    init(channel: any Channel, batcher: FlushBatcher) {
        self.channel = channel
        self.target = NIOLoopBound(FlushBatcher.Target(channel: channel), eventLoop: channel.eventLoop)
        self.batcher = batcher
    }

    func deliver(_ message: ChatMessage) {
        let bytes: FrameBytes
        do {
            bytes = try message.serializedBytes()
        } catch {
            return  // proto3 messages without required fields always serialize
        }
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: bytes.buffer)
        if channel.eventLoop.inEventLoop {
            write(frame)
        } else {
            batcher.send(.frame(frame), to: target, on: channel.eventLoop)
        }
    }

    func close(code: UInt16, reason: String) {
        let request = WebSocketCloseRequest(code: WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        if channel.eventLoop.inEventLoop {
            closeOnLoop(request)
        } else {
            batcher.send(.close(request), to: target, on: channel.eventLoop)
        }
    }

    private func write(_ frame: WebSocketFrame) {
        channel.write(frame, promise: nil)
        batcher.flush(target.value)
    }

    private func closeOnLoop(_ request: WebSocketCloseRequest) {
        target.value.flush()
        channel.triggerUserOutboundEvent(request, promise: nil)
    }
}
