import NIOCore
import NIOEmbedded
import NIOWebSocket
import SwitchboardServer
import Testing

/// `WebSocketFrameCodec` reads what NIO's decoder reads, refuses what it refuses, and writes frames NIO's
/// decoder reads back.
@Suite struct WebSocketFrameCodecTests {
    /// Random client frames (lengths across the 7-, 16- and 64-bit forms, masked or not, any opcode and
    /// reserved bits), fed in reads of every size from 1 byte: the same frames as NIO's decoder gives.
    @Test(arguments: [1, 3, 7, 64, 100_000])
    func readsWhatNIOsDecoderReads(readSize: Int) throws {
        var random = SeededRandom(seed: UInt64(readSize))
        var wire = ByteBuffer()
        for _ in 0..<60 {
            let opcode = UInt8.random(in: 0...15, using: &random)
            let control = opcode >= 8
            let length =
                control
                ? Int.random(in: 0...125, using: &random)
                : [0, 1, 125, 126, 1000, 65_535, 65_536, 70_000].randomElement(using: &random)!
            var payload = ByteBuffer()
            payload.writeBytes((0..<length).map { _ in UInt8.random(in: 0...255, using: &random) })
            let key: WebSocketMaskingKey? = Bool.random(using: &random) ? .random(using: &random) : nil
            wire.writeBytes(
                clientFrame(
                    fin: control || Bool.random(using: &random),
                    rsv: UInt8.random(in: 0...7, using: &random),
                    opcode: opcode,
                    key: key,
                    payload: payload
                )
            )
        }
        let ours = try decode(wire, readSize: readSize, with: WebSocketFrameCodec(maxFrameSize: 1 << 17))
        let nios = try decode(wire, readSize: readSize, with: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 17)))
        #expect(ours.frames.count == 60)
        #expect(ours.frames == nios.frames)
    }

    /// What NIO's decoder refuses, refused with the same error, and nothing read after it.
    @Test(
        arguments: [
            ([0x89, 0x7E, 0x00, 0x7E], NIOWebSocketError.multiByteControlFrameLength),  // ping of 126 bytes
            ([0x09, 0x00], .fragmentedControlFrame),  // ping without FIN
            ([0x82, 0x7E, 0x02, 0x01], .invalidFrameLength),  // 513 bytes, over 512
            ([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], .invalidFrameLength),  // a 64-bit length with the top bit set
        ] as [([UInt8], NIOWebSocketError)]
    )
    func refusesWhatNIOsDecoderRefuses(header: [UInt8], error: NIOWebSocketError) throws {
        var wire = ByteBuffer(bytes: header)
        wire.writeBytes(clientFrame(fin: true, rsv: 0, opcode: 0x1, key: nil, payload: ByteBuffer(string: "after")))
        let ours = try decode(wire, readSize: 1, with: WebSocketFrameCodec(maxFrameSize: 512))
        let nios = try decode(wire, readSize: 1, with: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 512)))
        #expect(ours.errors.first as? NIOWebSocketError == error)
        #expect(nios.errors.first as? NIOWebSocketError == error)
        #expect(ours.errors.count == 1, "one error; what follows is dropped")
        #expect(ours.frames.isEmpty)
    }

    /// Written frames read back through NIO's decoder as they were, header and payload in one buffer.
    @Test(arguments: [0, 1, 125, 126, 65_535, 65_536])
    func writesFramesNIOsDecoderReads(length: Int) throws {
        let channel = EmbeddedChannel(handler: WebSocketFrameCodec(maxFrameSize: 1 << 17))
        var payload = ByteBuffer()
        payload.writeBytes((0..<length).map { UInt8(truncatingIfNeeded: $0) })
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: payload)
        try channel.writeOutbound(frame)
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "one buffer per frame")
        let back = try decode(
            written,
            readSize: written.readableBytes,
            with: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 17))
        )
        #expect(back.frames == [Frame(frame)])
        _ = try channel.finish()
    }

    /// A payload with room in front, held by nothing else, gets its header there (no copy); a shared
    /// one is copied whole into one new buffer and left as it was.
    @Test func headerGoesIntoTheHeadroomOfAnUnsharedPayload() {
        var unshared = ByteBufferAllocator().buffer(capacity: 32)
        unshared.moveWriterIndex(forwardBy: 10)
        unshared.moveReaderIndex(forwardBy: 10)
        unshared.writeString("hello")
        let start = unshared.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let text = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer())
        #expect(WebSocketFrameCodec.prependHeader(of: text, to: &unshared))
        #expect(unshared.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == start - 2, "2 bytes in front")
        #expect(Array(unshared.readableBytesView) == [0x81, 5] + Array("hello".utf8))

        var noRoom = ByteBuffer(string: "hi")
        #expect(!WebSocketFrameCodec.prependHeader(of: text, to: &noRoom))
        let shared = ByteBuffer(string: "hi")
        let copied = WebSocketFrameCodec.encode(WebSocketFrame(fin: true, opcode: .binary, data: shared))
        #expect(Array(copied.readableBytesView) == [0x82, 2] + Array("hi".utf8))
        #expect(Array(shared.readableBytesView) == Array("hi".utf8))
    }
}

extension WebSocketFrameCodecTests {
    /// A binary message written as its payload alone, with room in front (as `FrameBytes` makes it),
    /// gets its header there: the bytes that reach the socket are the payload's own.
    @Test func aBinaryPayloadGetsItsHeaderInPlace() throws {
        let codec = WebSocketFrameCodec(maxFrameSize: 1 << 17)
        let channel = EmbeddedChannel(handler: codec)
        var payload = ByteBufferAllocator().buffer(capacity: 110)
        payload.moveWriterIndex(forwardBy: 10)
        payload.moveReaderIndex(forwardBy: 10)
        payload.writeBytes(Array(repeating: 0x41, count: 100))
        let start = payload.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) }
        codec.write(binary: consume payload, promise: nil)
        channel.flush()
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(written.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == start - 2, "2 bytes in front")
        #expect(Array(written.readableBytesView) == [0x82, 100] + Array(repeating: 0x41, count: 100))
        _ = try channel.finish()
    }
}

/// A decoded frame, comparable.
private struct Frame: Equatable {
    let fin: Bool
    let rsv: [Bool]
    let opcode: UInt8
    let maskKey: [UInt8]?
    let data: [UInt8]

    init(_ frame: WebSocketFrame) {
        fin = frame.fin
        rsv = [frame.rsv1, frame.rsv2, frame.rsv3]
        opcode = UInt8(webSocketOpcode: frame.opcode)
        maskKey = frame.maskKey.map { Array($0) }
        data = Array(frame.data.readableBytesView)
    }
}

/// Collects what reaches the end of the pipeline.
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    var frames: [Frame] = []
    var errors: [any Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(Frame(unwrapInboundIn(data)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }
}

/// `wire` fed to `decoder` in reads of `readSize` bytes: the frames and errors it passed on.
private func decode(
    _ wire: ByteBuffer,
    readSize: Int,
    with decoder: any ChannelHandler
) throws -> (frames: [Frame], errors: [any Error]) {
    let collector = Collector()
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(decoder)
    try channel.pipeline.syncOperations.addHandler(collector)
    var wire = wire
    while let chunk = wire.readSlice(length: min(readSize, wire.readableBytes)), chunk.readableBytes > 0 {
        try? channel.writeInbound(chunk)
    }
    _ = try? channel.finish()
    return (collector.frames, collector.errors)
}

/// A frame as a client puts it on the wire; the payload is masked with `key` (when given).
private func clientFrame(fin: Bool, rsv: UInt8, opcode: UInt8, key: WebSocketMaskingKey?, payload: ByteBuffer) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv << 4 | opcode]
    let mask: UInt8 = key == nil ? 0 : 0x80
    let length = payload.readableBytes
    switch length {
    case ...125: bytes.append(mask | UInt8(length))
    case ...0xFFFF: bytes += [mask | 126, UInt8(length >> 8), UInt8(length & 0xFF)]
    default: bytes += [mask | 127] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: length >> ($0 * 8)) }
    }
    var data = payload
    if let key {
        bytes += Array(key)
        data.webSocketMask(key)
    }
    return bytes + Array(data.readableBytesView)
}

/// A reproducible random number generator (SplitMix64).
private struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
