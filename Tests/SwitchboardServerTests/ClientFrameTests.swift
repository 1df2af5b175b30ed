import NIOCore
import NIOWebSocket
import Testing

@testable import SwitchboardServer

/// The codec's own frame type unmasks as NIO does, and carries the key as the wire has it.
@Suite struct ClientFrameTests {
    static let keys: [WebSocketMaskingKey] = [[0, 0, 0, 0], [1, 2, 3, 4], [0xFF, 0x00, 0xA5, 0x5A], [0x80, 0x7F, 0x01, 0xFE]]

    @Test(arguments: keys) func unmasksAsNIODoesAtEveryLength(key: WebSocketMaskingKey) {
        for length in 0...41 {
            let bytes = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
            var masked = bytes
            masked.webSocketMask(key)
            let nio = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: masked)
            let frame = ClientFrame(nio)
            #expect(frame.payload == bytes, "length \(length)")
            #expect(frame.payload == nio.unmaskedData, "length \(length)")
            #expect(frame.webSocketFrame.maskKey == key)
        }
    }

    @Test(arguments: keys) func theCodecReadsTheKeyInWireOrder(key: WebSocketMaskingKey) throws {
        var wire = ByteBuffer(bytes: [0x82, 0x80 | 5] + Array(key))
        var payload = ByteBuffer(string: "hello")
        payload.webSocketMask(key)
        wire.writeBuffer(&payload)
        let frame = try #require(try WebSocketFrameCodec.parseFrame(from: &wire, maxFrameSize: 64))
        #expect(frame.webSocketFrame.maskKey == key)
        #expect(frame.payload == ByteBuffer(string: "hello"))
        #expect(frame.reservedBits == 0 && frame.fin && frame.opcode == .binary)
    }

    /// A masked payload is copied once, as it is unmasked; an all-zero mask needs neither.
    @Test func onlyARealMaskCostsACopy() {
        let data = ByteBuffer(string: "twelve bytes")
        let address = data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let zero = ClientFrame(fin: true, reservedBits: 0, opcode: .binary, maskKey: 0, data: data)
        #expect(zero.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == address)
        let real = ClientFrame(fin: true, reservedBits: 0, opcode: .binary, maskKey: 0x0403_0201, data: data)
        #expect(real.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } != address)
        #expect(real.data == data, "the frame's own bytes stay as they came")
    }
}
