import NIOCore
import Testing

@testable import RedisWire

@Suite("RESP encoding with redisFormatCommandArgv")
struct RESPCommandEncoderTests {
    private func encode(_ command: [RESPArgument]) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try RESPCommandEncoder.encode(command, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func setWithBinaryValueIsExactRESP() throws {
        let value: [UInt8] = [UInt8(ascii: "a"), 13, 10, 0, UInt8(ascii: "b"), 0xFF]
        let bytes = try encode(["SET", "k", RESPArgument(value)])
        let expected = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\n".utf8) + value + Array("\r\n".utf8)
        #expect(bytes == expected)
    }

    @Test func byteBufferArgumentUsesOnlyItsReadableBytes() throws {
        var buffer = ByteBuffer(string: "xxpayload")
        buffer.moveReaderIndex(forwardBy: 2)
        #expect(
            try encode(["PUBLISH", "ch", RESPArgument(buffer)])
                == Array("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$7\r\npayload\r\n".utf8)
        )
    }

    @Test func emptyAndIntegerArguments() throws {
        #expect(try encode(["SET", "", 42]) == Array("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n42\r\n".utf8))
        #expect(try encode(["", ""]) == Array("*2\r\n$0\r\n\r\n$0\r\n\r\n".utf8))
        #expect(
            try encode(["INCRBY", RESPArgument(Int64.min)]) == Array("*2\r\n$6\r\nINCRBY\r\n$20\r\n-9223372036854775808\r\n".utf8)
        )
    }

    @Test func unicodeTextIsEncodedAsUTF8() throws {
        #expect(try encode(["ECHO", "héllo✓"]) == Array("*2\r\n$4\r\nECHO\r\n$9\r\nhéllo✓\r\n".utf8))
    }

    @Test func largeArgumentKeepsEveryByte() throws {
        let payload = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let bytes = try encode(["SET", "big", RESPArgument(payload)])
        let header = Array("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1000000\r\n".utf8)
        #expect(Array(bytes.prefix(header.count)) == header)
        #expect(Array(bytes[header.count..<(header.count + payload.count)]) == payload)
        #expect(bytes.count == header.count + payload.count + 2)
    }

    @Test func appendsToExistingBytes() throws {
        var buffer = ByteBuffer(string: "prefix")
        try RESPCommandEncoder.encode(["PING"] as [RESPArgument], into: &buffer)
        #expect(String(buffer: buffer) == "prefix*1\r\n$4\r\nPING\r\n")
    }

    @Test func emptyCommandIsRejected() {
        var buffer = ByteBuffer()
        #expect {
            try RESPCommandEncoder.encode([RESPArgument](), into: &buffer)
        } throws: { error in
            (error as? RedisError)?.code == .invalidCommand
        }
    }
}
