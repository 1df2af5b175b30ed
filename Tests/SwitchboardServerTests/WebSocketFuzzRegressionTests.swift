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
            NotReadingPeer(), WebSocketFrameCodec(maxFrameSize: 512), WebSocketSessionHandler(settings: Self.settings),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()

        try channel.writeInbound(ByteBuffer(bytes: clientBytes(opcode: 0x8, [UInt8(code >> 8), UInt8(code & 0xFF)])))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2_100))
        let pending = try channel.syncOptions?.getOption(.bufferedWritableBytes) ?? -1
        print("peer close \(code): \(pending) bytes unsent, channel active after 2.1 s: \(channel.isActive)")
        #expect(pending > 0, "the close reply must still be unsent for this test to mean anything")
        #expect(!channel.isActive, "TCP must be dropped within closeTimeout (2 s) of the peer's close")
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    /// The server fails the connection (1002 for a reserved bit, 1007 for invalid UTF-8), then the frame codec
    /// fails on the next frame (a fragmented ping): still one close frame, the first one (fuzz inputs
    /// regression-second-close-after-*). With NIO's WebSocketProtocolErrorHandler in the pipeline there
    /// were two; SignalingServerChannel now leaves it out, as this pipeline does.
    @Test(
        arguments: [
            (clientBytes(opcode: 0x1, [0x78], rsv1: true), 1002),
            (clientBytes(opcode: 0x1, [0xFF]), 1007),
        ] as [([UInt8], UInt16)]
    )
    func decoderErrorAfterTheServersCloseSendsNoSecondClose(first: [UInt8], code: UInt16) throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            WebSocketFrameCodec(maxFrameSize: 512),
            WebSocketSessionHandler(settings: Self.settings),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()

        var bytes = ByteBuffer(bytes: first)
        bytes.writeBytes([0x09, 0x80, 1, 2, 3, 4])  // a masked ping without FIN, no payload
        _ = try? channel.writeInbound(bytes)  // the decoder's error is passed on to the end of the pipeline

        let frames = try sentFrames(channel)
        let closes = frames.filter { $0.opcode == 0x8 }
        print("first close \(code): server sent opcodes \(frames.map(\.opcode)), close codes \(closes.map(\.code))")
        #expect(closes.count == 1)
        #expect(closes.first?.code == code)
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}

/// The frames the server wrote (unmasked), as (opcode, close code or 0).
private func sentFrames(_ channel: EmbeddedChannel) throws -> [(opcode: UInt8, code: UInt16)] {
    var all = ByteBuffer()
    while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
        all.writeBuffer(&buffer)
    }
    var frames: [(opcode: UInt8, code: UInt16)] = []
    while let first = all.readInteger(as: UInt8.self), let second = all.readInteger(as: UInt8.self) {
        var length = Int(second & 0x7F)
        if length == 126 { length = Int(all.readInteger(as: UInt16.self) ?? 0) }
        if length == 127 { length = Int(all.readInteger(as: UInt64.self) ?? 0) }
        guard var payload = all.readSlice(length: length) else { break }
        frames.append((first & 0x0F, first & 0x0F == 0x8 ? payload.readInteger(as: UInt16.self) ?? 0 : 0))
    }
    return frames
}

/// The socket under the pipeline when the client does not read and the kernel's buffer is full:
/// writes are accepted, nothing is ever sent (flushes go nowhere), so no write completes.
private final class NotReadingPeer: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func flush(context: ChannelHandlerContext) {}
}

/// A short final frame as a client puts it on the wire (masked with 37 fa 21 3d).
private func clientBytes(opcode: UInt8, _ payload: [UInt8], rsv1: Bool = false) -> [UInt8] {
    let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
    let masked = payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    return [0x80 | (rsv1 ? 0x40 : 0) | opcode, 0x80 | UInt8(payload.count)] + key + masked
}
