import NIOCore
import NIOEmbedded
import NIOWebSocket
import SwitchboardServer
import Testing

/// What the fuzz harness FuzzWebSocketFrames found in `WebSocketSessionHandler` (scripts/fuzz; the inputs
/// are in Fuzz/Corpus/FuzzWebSocketFrames/regression-*).
@Suite struct WebSocketFuzzRegressionTests {
    static let settings = WebSocketSettings(
        maxMessageBytes: 512,
        readTimeout: .zero,
        writeTimeout: .seconds(10),
        pingInterval: .zero,
        pongTimeout: .zero,
        closeTimeout: .seconds(2)
    )

    /// A client that stops reading, then sends a close frame (valid or not): the node answers with its
    /// close, which cannot be delivered. TCP must still go within `closeTimeout`, as it does when the node
    /// closes first; otherwise the connection, its slot and its unsent data are held for as long as the
    /// client likes (fuzz input regression-close-reply-never-delivered: `ff 88 82 37 29 00 88 00 00`).
    @Test(arguments: [1000, 1001, 14121] as [UInt16])
    func peerCloseWhoseReplyCannotBeDeliveredDropsTCPAfterCloseTimeout(code: UInt16) throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            NotReadingPeer(), WebSocketFrameEncoder(), WebSocketSessionHandler(settings: Self.settings),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()

        try channel.writeInbound(maskedFrame(.connectionClose, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2_100))
        let pending = try channel.syncOptions?.getOption(.bufferedWritableBytes) ?? -1
        print("peer close \(code): \(pending) bytes unsent, channel active after 2.1 s: \(channel.isActive)")
        #expect(pending > 0, "the close reply must still be unsent for this test to mean anything")
        #expect(!channel.isActive, "TCP must be dropped within closeTimeout (2 s) of the peer's close")
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}

/// The socket under the pipeline when the client does not read and the kernel's buffer is full:
/// writes are accepted, nothing is ever sent (flushes go nowhere), so no write completes.
private final class NotReadingPeer: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func flush(context: ChannelHandlerContext) {}
}

/// A masked frame as a client sends it.
private func maskedFrame(_ opcode: WebSocketOpcode, _ bytes: [UInt8]) -> WebSocketFrame {
    let key = WebSocketMaskingKey.random()
    var data = ByteBuffer(bytes: bytes)
    data.webSocketMask(key)
    return WebSocketFrame(fin: true, opcode: opcode, maskKey: key, data: data)
}
