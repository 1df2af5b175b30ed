// Fuzzes the WebSocket frame path as a node runs it after the 101: raw bytes from a client → NIO's
// `WebSocketFrameDecoder` (in a `ByteToMessageHandler`) → `WebSocketProtocolErrorHandler` →
// `WebSocketSessionHandler` (which reassembles messages with `WebSocketMessageAssembler`) → an
// application that echoes each message, on an `EmbeddedChannel`; then the clock runs 200 s on.
//
// Input: byte 0 is the size of each read (0: everything in one read); the rest is what the client sends.
//
// Properties, for every input:
// - the application sees only whole messages of at most `maxMessageBytes`, text ones valid UTF-8;
// - everything the server writes parses as server frames: FIN set, no reserved bits, unmasked, a
//   known opcode, control frames of at most 125 bytes, a close frame's code one that may be sent;
// - the server sends at most one close frame and nothing after it;
// - once the timers have run (ping, pong timeout, close timeout), the connection is closed.
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SwitchboardWebSocket

/// The node's defaults, with a small message limit so that short inputs reach the 1009 paths.
let settings = WebSocketSettings(maxMessageBytes: 512)

runFuzzer { input in
    guard let readSize = input.first else { return }
    let stream = input.dropFirst()

    let channel = EmbeddedChannel()
    let application = EchoApplication(maxMessageBytes: settings.maxMessageBytes)
    // The pipeline NIOTypedWebSocketServerUpgrader and SignalingServerChannel build.
    try! channel.pipeline.syncOperations.addHandlers([
        SocketLikeWrites(),
        WebSocketFrameEncoder(),
        ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: settings.maxMessageBytes)),
        WebSocketProtocolErrorHandler(),
        WebSocketSessionHandler(settings: settings),
        application,
    ])
    try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()

    var output = OutputChecker()
    var offset = stream.startIndex
    while offset < stream.endIndex, channel.isActive {
        let end = readSize == 0 ? stream.endIndex : min(offset + Int(readSize), stream.endIndex)
        var buffer = channel.allocator.buffer(capacity: end - offset)
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
        offset = end
        // Errors the handlers passed on (a decoder error, bytes after it) end up here; the handlers'
        // answer to them is what is checked.
        _ = try? channel.writeInbound(buffer)
        output.take(from: channel)
    }
    channel.embeddedEventLoop.advanceTime(by: .seconds(200))
    output.take(from: channel)
    output.finish()
    check(!channel.isActive, "the connection outlived its timers")
    _ = try? channel.finish(acceptAlreadyClosed: true)
}

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

/// Fails writes once the channel is closed, as a socket channel does; `EmbeddedChannel` would record them.
final class SocketLikeWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard context.channel.isActive else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(data, promise: promise)
    }
}

/// Parses what the server wrote, frame by frame, as a client would.
struct OutputChecker {
    private var bytes: [UInt8] = []
    private var closeSeen = false

    /// Takes every buffer written so far and checks each whole frame in it.
    mutating func take(from channel: EmbeddedChannel) {
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readableBytesView
        }
        while let length = frameLength() {
            checkFrame(bytes[0..<length])
            bytes.removeFirst(length)
        }
    }

    /// At the end, no frame is left half-written.
    func finish() {
        check(bytes.isEmpty, "\(bytes.count) bytes of a partial frame written")
    }

    /// The length of the whole frame at the front, `nil` until it is all there.
    private func frameLength() -> Int? {
        guard bytes.count >= 2 else { return nil }
        var header = 2
        var length = Int(bytes[1] & 0x7F)
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            header = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            header = 10
        }
        if bytes[1] & 0x80 != 0 { header += 4 }
        return bytes.count >= header + length ? header + length : nil
    }

    private mutating func checkFrame(_ frame: ArraySlice<UInt8>) {
        let first = frame[frame.startIndex]
        let second = frame[frame.startIndex + 1]
        check(!closeSeen, "a frame (opcode \(first & 0x0F)) after the close frame")
        check(first & 0x80 != 0, "a frame without FIN")
        check(first & 0x70 == 0, "reserved bits set")
        check(second & 0x80 == 0, "a masked server frame")
        let header = (second & 0x7F) == 126 ? 4 : (second & 0x7F) == 127 ? 10 : 2
        let payload = frame.dropFirst(header)
        switch first & 0x0F {
        case 0x1, 0x2:
            break
        case 0x9, 0xA:
            check(payload.count <= 125, "a control frame of \(payload.count) bytes")
        case 0x8:
            closeSeen = true
            check(payload.count <= 125, "a close frame of \(payload.count) bytes")
            check(payload.count != 1, "a close frame of 1 byte")
            if payload.count >= 2 {
                let code = UInt16(payload[payload.startIndex]) << 8 | UInt16(payload[payload.startIndex + 1])
                check((1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code),
                      "close code \(code) sent")
                check(String(validating: payload.dropFirst(2), as: UTF8.self) != nil, "a close reason that is not UTF-8")
            }
        default:
            check(false, "opcode \(first & 0x0F) sent")
        }
    }
}
