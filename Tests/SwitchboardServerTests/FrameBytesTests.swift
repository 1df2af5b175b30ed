import NIOCore
import NIOWebSocket
import SwitchboardCore
import SwitchboardProto
import Testing

@testable import SwitchboardServer

/// Frame payloads are written once, with room in front for the header.
@Suite struct FrameBytesTests {
    private struct Encoded: EncodedChatMessage {
        let bytes: [UInt8]
        var sender: String { "alice" }
        var byteCount: Int { bytes.count }
        func copyBytes(to destination: UnsafeMutableRawBufferPointer) { destination.copyBytes(from: bytes) }
        func decoded() -> ChatMessage? { nil }
    }

    /// A message relayed in its bytes becomes a payload holding exactly those bytes, behind the headroom
    /// the codec writes the header into.
    @Test(arguments: [0, 1, 300])
    func encodedMessagesAreCopiedBehindTheHeadroom(count: Int) {
        let message = Encoded(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7) })
        var payload = FrameBytes(copying: message).buffer
        #expect(Array(payload.readableBytesView) == message.bytes)
        #expect(payload.readerIndex == FrameBytes.headroom)
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer())
        #expect(WebSocketFrameCodec.prependHeader(of: frame, to: &payload), "room in front, held once")
    }
}
