import Foundation
import NIOCore
import SwitchboardProto
import Testing

@testable import SwitchboardRedis

/// A `deliver` envelope's message goes on in its bytes; only its sender is read, by walking the fields.
@Suite struct EnvelopeMessageTests {
    private static func message(from: String, content: String) -> ChatMessage {
        var message = ChatMessage()
        message.avatar = "https://example.com/a.png"
        message.fromUsername = "Alice"
        message.from = from
        message.to = "bob"
        message.content = content
        message.contentType = 6
        message.messageType = 1
        message.file = Data(repeating: 0xFF, count: 300)
        message.timestamp = 1_700_000_000_000
        message.duration = -1
        return message
    }

    /// The sender found by the walk is the decoder's `from`, whatever the other fields hold (multi-byte
    /// lengths and varints, negative numbers, a field named like `from` inside another's bytes).
    @Test(arguments: ["alice", "", String(repeating: "u", count: 200), "zoë"])
    func theSenderIsTheDecodersFrom(from: String) throws {
        let content = #"{"type":"ice-candidate","x":"\#u{1A}\#u{3}from"}"# + String(repeating: "c", count: 500)
        let original = Self.message(from: from, content: content)
        let bytes = ByteBuffer(bytes: try original.serializedBytes() as [UInt8])
        let encoded = try #require(EnvelopeMessage(bytes))
        #expect(encoded.sender == from)
        #expect(encoded.byteCount == bytes.readableBytes)
        #expect(encoded.decoded() == original)
        var copy = [UInt8](repeating: 0, count: encoded.byteCount)
        copy.withUnsafeMutableBytes { encoded.copyBytes(to: $0) }
        #expect(copy == Array(bytes.readableBytesView), "the bytes as they came")
    }

    @Test func theLastFromIsTheSenderAsForTheDecoder() throws {
        var bytes = ByteBuffer(bytes: try Self.message(from: "first", content: "{}").serializedBytes() as [UInt8])
        bytes.writeBytes([3 << 3 | 2, 4] + Array("last".utf8))
        #expect(EnvelopeMessage(bytes)?.sender == "last")
        #expect(EnvelopeMessage(bytes)?.decoded()?.from == "last")
    }

    @Test(
        arguments: [
            [0x1A, 0x05, 0x61],  // a length past the end
            [0x08],  // a varint cut short
            [0x08] + [UInt8](repeating: 0x80, count: 11),  // a varint over 10 bytes
            [0x0B],  // a group start: not proto3
            [0x0F],  // wire type 7 does not exist
            [0x09, 0x01, 0x02],  // 8 bytes announced, 2 there
        ] as [[UInt8]]
    )
    func aMalformedMessageIsRefused(bytes: [UInt8]) {
        #expect(EnvelopeMessage(ByteBuffer(bytes: bytes)) == nil)
    }
}
