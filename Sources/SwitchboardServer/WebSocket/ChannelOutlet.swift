import NIOCore
import NIOWebSocket
import SwitchboardCore
import SwitchboardProto

/// Delivers messages to one WebSocket channel from any thread.
///
/// The message is encoded on the caller's thread and written on the channel's event loop; writes from
/// one caller keep their order. Writes made while the loop reads a burst share one flush
/// (`FlushBatcher`).
///
/// An outlet made before the WebSocket pipeline is ready keeps what it is given until ``open()``.
/// Closing it frees the connection's `slot` at once (a replaced session does not hold a place).
///
/// A class: the session holds it as `any SessionOutlet`, which a struct of this size would box, and the
/// handler holds it too (issue 10: memory per idle connection).
final class ChannelOutlet: SessionOutlet {
    private let channel: any Channel
    private let target: NIOLoopBound<FlushBatcher.Target>
    private let batcher: FlushBatcher
    private let slot: ConnectionSlot?

    /// Call on the channel's loop.
    init(channel: any Channel, batcher: FlushBatcher, slot: ConnectionSlot? = nil, open: Bool = true) {
        self.channel = channel
        self.target = NIOLoopBound(FlushBatcher.Target(channel: channel, open: open), eventLoop: channel.eventLoop)
        self.batcher = batcher
        self.slot = slot
    }

    /// The channel's loop.
    var eventLoop: any EventLoop { channel.eventLoop }

    /// Gives the connection's place back (once; closing does too).
    func releaseSlot() {
        slot?.release()
    }

    /// The pipeline is ready, with `writer` (its session handler) in it: writes what waited. Call on
    /// the channel's loop.
    func open(writer: WebSocketSessionHandler?) {
        target.value.open(writer: writer)
    }

    func deliver(_ message: ChatMessage) {
        let bytes: FrameBytes
        do {
            bytes = try message.serializedBytes()
        } catch {
            return  // proto3 messages without required fields always serialize
        }
        send((consume bytes).buffer)
    }

    /// Copies the message's bytes into a frame as they are: no decoding, no encoding.
    func deliver(encoded message: some EncodedChatMessage) {
        let bytes = FrameBytes(copying: message)
        send((consume bytes).buffer)
    }

    /// Writes a message's payload, with room for the frame header in front. Moved, not copied: held by
    /// nothing else, the buffer gets the header in its headroom.
    private func send(_ payload: consuming ByteBuffer) {
        if channel.eventLoop.inEventLoop {
            write(consume payload)
        } else {
            batcher.send(.binary(consume payload), to: target, on: channel.eventLoop)
        }
    }

    func close(code: UInt16, reason: String) {
        releaseSlot()
        let request = WebSocketCloseRequest(code: WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        if channel.eventLoop.inEventLoop {
            closeOnLoop(request)
        } else {
            batcher.send(.close(request), to: target, on: channel.eventLoop)
        }
    }

    private func write(_ payload: consuming ByteBuffer) {
        target.value.perform(.binary(consume payload))
        batcher.flush(target.value)
    }

    private func closeOnLoop(_ request: WebSocketCloseRequest) {
        target.value.perform(.close(request))
    }
}
