import NIOCore
import NIOWebSocket
import SwitchboardCore
import SwitchboardProto

/// Delivers messages to one WebSocket channel from any thread.
///
/// The message is encoded on the caller's thread and written on the channel's event loop. Writes made
/// while the loop handles one batch of I/O share a single flush (one `writev` instead of one per
/// message); writes from one caller keep their order.
struct ChannelOutlet: SessionOutlet {
    private let channel: any Channel
    private let flushState: NIOLoopBound<FlushState>

    /// Whether a flush is already queued for the current batch; only touched on the channel's loop.
    private final class FlushState {
        var scheduled = false
    }

    init(channel: any Channel) {
        self.channel = channel
        self.flushState = NIOLoopBound(FlushState(), eventLoop: channel.eventLoop)
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
            channel.eventLoop.execute { write(frame) }
        }
    }

    func close(code: UInt16, reason: String) {
        let request = WebSocketCloseRequest(code: WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        if channel.eventLoop.inEventLoop {
            flush()
            channel.triggerUserOutboundEvent(request, promise: nil)
        } else {
            channel.eventLoop.execute {
                flush()
                channel.triggerUserOutboundEvent(request, promise: nil)
            }
        }
    }

    private func write(_ frame: WebSocketFrame) {
        channel.write(frame, promise: nil)
        let state = flushState.value
        guard !state.scheduled else { return }
        state.scheduled = true
        // Runs after the loop has handled the I/O events of this wake-up, so the batch is complete.
        channel.eventLoop.execute { flush() }
    }

    private func flush() {
        flushState.value.scheduled = false
        channel.flush()
    }
}
