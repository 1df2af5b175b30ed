import NIOCore
import NIOEmbedded
import NIOWebSocket
import SwitchboardServer
import Testing

/// `WebSocketSessionHandler` driven frame by frame on an `EmbeddedChannel`.
@Suite struct WebSocketSessionHandlerTests {
    /// Settings with every timer off unless a test turns it on.
    static let quiet = WebSocketSettings(
        maxMessageBytes: 64,
        readTimeout: .zero,
        writeTimeout: .zero,
        pingInterval: .zero,
        pongTimeout: .zero,
        closeTimeout: .seconds(2)
    )

    // MARK: Messages

    @Test func deliversUnfragmentedMessages() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.text, "hello"))
        try channel.writeInbound(clientFrame(.binary, [0, 1, 2]))
        #expect(try channel.readInbound(as: WebSocketMessage.self) == .text(ByteBuffer(string: "hello")))
        #expect(try channel.readInbound(as: WebSocketMessage.self) == .binary(ByteBuffer(bytes: [0, 1, 2])))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test func reassemblesFragmentsAroundAPing() throws {
        let channel = try makeChannel()
        // "héllo" with the two bytes of "é" split across fragments.
        let bytes = Array("héllo".utf8)
        try channel.writeInbound(clientFrame(.text, Array(bytes[0..<2]), fin: false))
        try channel.writeInbound(clientFrame(.ping, "are you there"))
        try channel.writeInbound(clientFrame(.continuation, Array(bytes[2..<4]), fin: false))
        #expect(try channel.readInbound(as: WebSocketMessage.self) == nil)
        try channel.writeInbound(clientFrame(.continuation, Array(bytes[4...]), fin: true))

        #expect(try channel.readInbound(as: WebSocketMessage.self) == .text(ByteBuffer(string: "héllo")))
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong)
        #expect(pong.data == ByteBuffer(string: "are you there"))
        #expect(channel.isActive)
    }

    @Test func pingIsAnsweredWithItsPayload() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.ping, [9, 8, 7]))
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong)
        #expect(pong.fin)
        #expect(pong.maskKey == nil)
        #expect(pong.data == ByteBuffer(bytes: [9, 8, 7]))
    }

    // MARK: Failures

    @Test func oversizedFragmentedMessageClosesWith1009() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.binary, [UInt8](repeating: 1, count: 40), fin: false))
        try channel.writeInbound(clientFrame(.continuation, [UInt8](repeating: 2, count: 40), fin: true))
        #expect(try channel.readInbound(as: WebSocketMessage.self) == nil)
        #expect(try readClose(channel)?.code == 1009)
    }

    @Test func oversizedSingleFrameClosesWith1009() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.text, String(repeating: "x", count: 65)))
        #expect(try readClose(channel)?.code == 1009)
    }

    @Test func invalidUTF8ClosesWith1007() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.text, [0x68, 0x69], fin: false))
        try channel.writeInbound(clientFrame(.continuation, [0xED, 0xA0, 0x80], fin: true))  // a surrogate
        #expect(try channel.readInbound(as: WebSocketMessage.self) == nil)
        #expect(try readClose(channel)?.code == 1007)
    }

    @Test func invalidUTF8InBinaryIsFine() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.binary, [0xFF, 0xFE]))
        #expect(try channel.readInbound(as: WebSocketMessage.self) == .binary(ByteBuffer(bytes: [0xFF, 0xFE])))
    }

    @Test(arguments: [
        ProtocolViolation.continuationWithoutStart,
        .dataFrameInsideFragmentedMessage,
        .reservedBit,
        .reservedOpcode,
        .unmaskedFrame,
    ])
    func protocolViolationsCloseWith1002(_ violation: ProtocolViolation) throws {
        let channel = try makeChannel()
        for frame in violation.frames {
            try channel.writeInbound(frame)
        }
        #expect(try channel.readInbound(as: WebSocketMessage.self) == nil)
        #expect(try readClose(channel)?.code == 1002)
    }

    // MARK: Close handshake

    @Test(arguments: [1000, 1001, 1003, 1007, 1011, 3000, 4999] as [UInt16])
    func clientCloseIsEchoedAndTCPClosed(code: UInt16) throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientClose(code: code, reason: "bye"))
        #expect(try readClose(channel)?.code == code)
        #expect(!channel.isActive)
    }

    @Test func emptyClientCloseIsAnsweredWith1000() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.connectionClose, [UInt8]()))
        #expect(try readClose(channel)?.code == 1000)
        #expect(!channel.isActive)
    }

    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] as [UInt16])
    func invalidCloseCodeClosesWith1002(code: UInt16) throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientClose(code: code))
        #expect(try readClose(channel)?.code == 1002)
        #expect(!channel.isActive)
    }

    @Test func oneByteClosePayloadClosesWith1002() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.connectionClose, [0x03]))
        #expect(try readClose(channel)?.code == 1002)
        #expect(!channel.isActive)
    }

    @Test func invalidUTF8CloseReasonClosesWith1002() throws {
        let channel = try makeChannel()
        try channel.writeInbound(clientFrame(.connectionClose, [0x03, 0xE8, 0xC0, 0xAF]))
        #expect(try readClose(channel)?.code == 1002)
    }

    @Test func serverCloseRequestSendsOneCloseThenWaitsForThePeer() throws {
        let channel = try makeChannel()
        channel.pipeline.triggerUserOutboundEvent(WebSocketCloseRequest(code: .goingAway, reason: "shutting down"), promise: nil)
        channel.pipeline.triggerUserOutboundEvent(WebSocketCloseRequest(code: .normalClosure), promise: nil)

        let close = try #require(try readClose(channel))
        #expect(close.code == 1001)
        #expect(close.reason == "shutting down")
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)  // only one close
        #expect(channel.isActive)

        // Data after our close is ignored; writes are refused.
        try channel.writeInbound(clientFrame(.text, "late"))
        #expect(try channel.readInbound(as: WebSocketMessage.self) == nil)
        let write = channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "x")))
        #expect(throws: WebSocketSessionError.closing) { try write.wait() }

        try channel.writeInbound(clientClose(code: 1001))
        #expect(!channel.isActive)
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test func serverCloseDropsTCPAfterCloseTimeout() throws {
        let channel = try makeChannel()
        channel.pipeline.triggerUserOutboundEvent(WebSocketCloseRequest(code: .normalClosure), promise: nil)
        #expect(try readClose(channel)?.code == 1000)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1900))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)
    }

    @Test func closeReasonIsCutToFitAControlFrame() throws {
        let channel = try makeChannel()
        let reason = String(repeating: "é", count: 100)  // 200 bytes
        channel.pipeline.triggerUserOutboundEvent(WebSocketCloseRequest(code: .policyViolation, reason: reason), promise: nil)
        let close = try #require(try readClose(channel))
        #expect(close.code == 1008)
        #expect(close.reason == String(repeating: "é", count: 61))  // 122 bytes ≤ 123
    }

    @Test func closeFrameWrittenByTheApplicationCountsAsCloseRequest() throws {
        let channel = try makeChannel()
        var payload = ByteBuffer()
        payload.write(webSocketErrorCode: .normalClosure)
        try channel.writeOutbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload))
        #expect(try readClose(channel)?.code == 1000)
        let write = channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer()))
        #expect(throws: WebSocketSessionError.closing) { try write.wait() }
    }

    // MARK: Outbound

    @Test func outboundFramesAreUnmaskedAndFinal() throws {
        let channel = try makeChannel()
        var frame = WebSocketFrame(fin: false, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: [1, 2, 3]))
        frame.rsv1 = true
        try channel.writeOutbound(frame)
        let sent = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(sent.fin)
        #expect(sent.maskKey == nil)
        #expect(sent.reservedBits.isEmpty)
        #expect(sent.data == ByteBuffer(bytes: [1, 2, 3]))
    }

    // MARK: Timers

    @Test func readTimeoutClosesWith1001() throws {
        var settings = Self.quiet
        settings.readTimeout = .seconds(10)
        let channel = try makeChannel(settings)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        let close = try #require(try readClose(channel))
        #expect(close.code == 1001)
        #expect(close.reason == "read timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive)
    }

    @Test func framesAndApplicationActivityKeepTheConnectionAlive() throws {
        var settings = Self.quiet
        settings.readTimeout = .seconds(10)
        let channel = try makeChannel(settings)
        for second in 1...60 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            if second % 5 == 0 {
                if second < 30 {
                    try channel.writeInbound(clientFrame(.binary, [1]))
                    _ = try channel.readInbound(as: WebSocketMessage.self)
                } else {
                    channel.pipeline.triggerUserOutboundEvent(WebSocketActivity(), promise: nil)
                }
            }
        }
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        #expect(channel.isActive)
    }

    @Test func pingsAndPongTimeout() throws {
        var settings = Self.quiet
        settings.pingInterval = .seconds(30)
        settings.pongTimeout = .seconds(10)
        let channel = try makeChannel(settings)

        // First ping, answered.
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        let ping = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(ping.opcode == .ping)
        try channel.writeInbound(clientFrame(.pong, [UInt8]()))
        channel.embeddedEventLoop.advanceTime(by: .seconds(15))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)

        // Second ping, unanswered.
        channel.embeddedEventLoop.advanceTime(by: .seconds(15))
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .ping)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let close = try #require(try readClose(channel))
        #expect(close.code == 1001)
        #expect(close.reason == "pong timeout")
    }

    @Test func slowReaderIsClosedAfterWriteTimeout() throws {
        var settings = Self.quiet
        settings.writeTimeout = .seconds(10)
        let channel = try makeChannel(settings)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)

        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        let close = try #require(try readClose(channel))
        #expect(close.code == 1008)
        #expect(close.reason == "write timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    // MARK: Backpressure (PROTOCOL.md §9)

    @Test func readIsHeldWhileTheChannelIsUnwritable() throws {
        let reads = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(reads)
        try channel.pipeline.syncOperations.addHandler(WebSocketSessionHandler(settings: Self.quiet))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let before = reads.count
        channel.read()
        #expect(reads.count == before + 1, "a writable channel reads")

        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        channel.read()
        #expect(reads.count == before + 1, "no read while the peer does not take what it is sent")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == before + 2, "the held read goes on, once, when the channel drains")
    }

    @Test func readHeldWhenTheCloseIsSentStaysHeld() throws {
        let reads = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(reads)
        try channel.pipeline.syncOperations.addHandler(WebSocketSessionHandler(settings: Self.quiet))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        let held = reads.count
        try channel.pipeline.syncOperations.triggerUserOutboundEvent(
            WebSocketCloseRequest(code: .policyViolation, reason: "write timeout"),
            promise: nil
        )
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == held, "what a closing peer sent while held is not read: it would only be dropped")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "the close timer ends the connection")
    }

    @Test func unsentDataOverTheCapClosesWith1008() throws {
        var settings = Self.quiet
        settings.maxPendingBytes = 1_000
        let channel = try makeUnwritableEncodingChannel(settings)

        let frame = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(repeating: 7, count: 100))
        var written = 0
        var refused = false
        while written < 30, !refused {
            // Unflushed writes stay pending; a refused one fails at once.
            channel.write(frame).assumeIsolated().whenFailure { error in
                refused = true
                #expect(error as? WebSocketSessionError == .closing)
            }
            if !refused { written += 1 }
        }
        #expect(written == 11, "the frame written when 1,000 bytes already wait is the last one taken")
        var close: (UInt16, String)?
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) {
            // The encoder writes a header buffer, then the payload: find the close frame's header.
            if bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) == 0x88,
                var payload = try channel.readOutbound(as: ByteBuffer.self)
            {
                close = (payload.readInteger(as: UInt16.self) ?? 0, payload.readString(length: payload.readableBytes) ?? "")
            }
        }
        #expect(close?.0 == 1008)
        #expect(close?.1 == "too much unsent data")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "TCP is dropped when the close cannot be delivered")
    }

    @Test func oneMessageLargerThanTheCapIsNotAnAbuse() throws {
        var settings = Self.quiet
        settings.maxPendingBytes = 1_000
        let channel = try makeUnwritableEncodingChannel(settings)
        let big = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(repeating: 7, count: 5_000))
        var refused = false
        channel.write(big).assumeIsolated().whenFailure { _ in refused = true }
        #expect(!refused)
        channel.flush()
        #expect(
            try channel.readOutbound(as: ByteBuffer.self)?.getInteger(at: 0, as: UInt8.self) == 0x82,
            "a binary frame, not a close"
        )
        #expect(channel.isActive)
    }

    @Test func pingOverTheSendersBudgetIsNotAnswered() throws {
        let channel = try makeChannel(application: PingBudget(allowed: 1))
        try channel.writeInbound(clientFrame(.ping, "one"))
        try channel.writeInbound(clientFrame(.ping, "two"))
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.data == ByteBuffer(string: "one"))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        #expect(channel.isActive)
    }

    // MARK: A receiver as the application (no handler behind)

    @Test func receiverGivenAtInitIsToldWhatThePipelineWould() throws {
        let receiver = RecordingReceiver()
        let session = WebSocketSessionHandler(limits: WebSocketSessionLimits(Self.quiet), receiver: receiver)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(session)
        #expect(receiver.attached === session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()

        channel.pipeline.fireChannelRead(clientFrame(.text, "a", fin: false))  // one read burst
        channel.pipeline.fireChannelRead(clientFrame(.continuation, "b"))
        channel.pipeline.fireChannelReadComplete()
        #expect(receiver.messages == [.text(ByteBuffer(string: "ab"))])
        #expect(receiver.readBursts == 1)
        #expect(try channel.readInbound(as: WebSocketMessage.self) == nil, "nothing goes down the pipeline")

        session.send(binary: ByteBuffer(string: "out"))
        session.flush()
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.data == ByteBuffer(string: "out"))

        try channel.close().wait()
        #expect(receiver.closed)
    }

    @Test func receiverHoldsReadsUntilItPassesThemOn() throws {
        let reads = ReadCounter()
        let receiver = RecordingReceiver()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(reads)
        let session = WebSocketSessionHandler(limits: WebSocketSessionLimits(Self.quiet), receiver: receiver)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let before = reads.count

        receiver.admitting = false
        channel.read()
        channel.read()
        #expect(reads.count == before, "the receiver holds the read")
        receiver.admitting = true
        session.readAgain()
        #expect(reads.count == before + 1)

        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        receiver.admitting = false
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == before + 1, "a read held while unwritable still asks the receiver once writable")
    }

    @Test func quiescingClosesWith1001() throws {
        let channel = try makeChannel()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        let close = try #require(try readClose(channel))
        #expect(close.code == 1001)
        #expect(close.reason == "node shutting down")
    }

    // MARK: Echo

    @Test func echoHandlerEchoesWholeMessages() throws {
        let channel = try makeChannel(application: EchoHandler())
        try channel.writeInbound(clientFrame(.text, "ab", fin: false))
        try channel.writeInbound(clientFrame(.continuation, "c", fin: true))
        try channel.writeInbound(clientFrame(.binary, [7]))
        let text = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(text.opcode == .text)
        #expect(text.data == ByteBuffer(string: "abc"))
        let binary = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(binary.opcode == .binary)
        #expect(binary.data == ByteBuffer(bytes: [7]))
    }
}

// MARK: - Helpers

/// Inbound frame sequences that break RFC 6455.
enum ProtocolViolation: CaseIterable, Sendable {
    case continuationWithoutStart, dataFrameInsideFragmentedMessage, reservedBit, reservedOpcode, unmaskedFrame

    var frames: [WebSocketFrame] {
        switch self {
        case .continuationWithoutStart:
            [clientFrame(.continuation, "x")]
        case .dataFrameInsideFragmentedMessage:
            [clientFrame(.text, "a", fin: false), clientFrame(.text, "b")]
        case .reservedBit:
            [clientFrame(.text, "a", rsv1: true)]
        case .reservedOpcode:
            [clientFrame(WebSocketOpcode(encodedWebSocketOpcode: 0x3)!, "a")]
        case .unmaskedFrame:
            [WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "a"))]
        }
    }
}

/// An active channel: session handler, then `application` (if any).
private func makeChannel(
    _ settings: WebSocketSettings = WebSocketSessionHandlerTests.quiet,
    application: (any ChannelHandler)? = nil
) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(WebSocketSessionHandler(settings: settings))
    if let application {
        try channel.pipeline.syncOperations.addHandler(application)
    }
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
    return channel
}

/// A receiver that lets `allowed` pings be answered.
private final class PingBudget: ChannelInboundHandler, WebSocketMessageReceiver {
    typealias InboundIn = WebSocketMessage
    private var allowed: Int

    init(allowed: Int) {
        self.allowed = allowed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        try? context.pipeline.syncOperations.handler(type: WebSocketSessionHandler.self).deliverMessages(to: self)
    }

    func receive(_ message: WebSocketMessage) {}

    func admitsPing() -> Bool {
        allowed -= 1
        return allowed >= 0
    }
}

/// A receiver given to the session handler at init, recording what it is told.
private final class RecordingReceiver: WebSocketMessageReceiver {
    var messages: [WebSocketMessage] = []
    var readBursts = 0
    var attached: WebSocketSessionHandler?
    var admitting = true
    var closed = false

    func receive(_ message: WebSocketMessage) { messages.append(message) }
    func attached(to session: WebSocketSessionHandler) { attached = session }
    func admitsRead() -> Bool { admitting }
    func readComplete() { readBursts += 1 }
    func sessionClosed() { closed = true }
}

/// A masked frame as a client sends it.
private func clientFrame(
    _ opcode: WebSocketOpcode,
    _ bytes: some Sequence<UInt8>,
    fin: Bool = true,
    rsv1: Bool = false
) -> WebSocketFrame {
    let key = WebSocketMaskingKey.random()
    var data = ByteBuffer(bytes: Array(bytes))
    data.webSocketMask(key)
    return WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskKey: key, data: data)
}

private func clientFrame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true, rsv1: Bool = false) -> WebSocketFrame {
    clientFrame(opcode, Array(text.utf8), fin: fin, rsv1: rsv1)
}

/// A client close frame with `code` and `reason`.
private func clientClose(code: UInt16, reason: String = "") -> WebSocketFrame {
    var bytes = [UInt8(code >> 8), UInt8(code & 0xFF)]
    bytes += Array(reason.utf8)
    return clientFrame(.connectionClose, bytes)
}

/// The next outbound frame, which must be a close; its code and reason.
private func readClose(_ channel: EmbeddedChannel) throws -> (code: UInt16, reason: String)? {
    guard let frame = try channel.readOutbound(as: WebSocketFrame.self) else { return nil }
    #expect(frame.opcode == .connectionClose)
    #expect(frame.maskKey == nil)
    var data = frame.data
    guard let code = data.readInteger(as: UInt16.self) else { return nil }
    return (code, data.readString(length: data.readableBytes) ?? "")
}

/// Counts the `read()` calls that reach the head of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}

/// An active channel that encodes frames to bytes (so unsent data can be counted) and that the peer
/// has stopped draining.
private func makeUnwritableEncodingChannel(_ settings: WebSocketSettings) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
    try channel.pipeline.syncOperations.addHandler(WebSocketSessionHandler(settings: settings))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
    channel.isWritable = false
    channel.pipeline.fireChannelWritabilityChanged()
    return channel
}
