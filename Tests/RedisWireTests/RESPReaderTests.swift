import NIOCore
import Testing

@testable import RedisWire

@Suite("RESP decoding with a hiredis redisReader")
struct RESPReaderTests {
    /// Hand-written RESP2 for every type, and what each decodes to.
    static let cases: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("+\r\n", .simpleString("")),
        ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$6\r\na\r\nb\0c\r\n", .bulkString(ByteBuffer(bytes: [97, 13, 10, 98, 0, 99]))),
        ("$-1\r\n", .bulkString(nil)),
        ("*-1\r\n", .array(nil)),
        ("*0\r\n", .array([])),
        (
            "*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n",
            .array([.integer(1), .bulkString(ByteBuffer(string: "foo")), .simpleString("bar")])
        ),
        (
            "*3\r\n*2\r\n:1\r\n$-1\r\n*-1\r\n*1\r\n-WRONGTYPE nested\r\n",
            .array([.array([.integer(1), .bulkString(nil)]), .array(nil), .array([.error("WRONGTYPE nested")])])
        ),
        ("*2\r\n$-1\r\n*0\r\n", .array([.bulkString(nil), .array([])])),
    ]

    private static var allBytes: [UInt8] { cases.flatMap { Array($0.0.utf8) } }
    private static var allValues: [RESPValue] { cases.map(\.1) }

    private func drain(_ reader: RESPReader) throws -> [RESPValue] {
        var values: [RESPValue] = []
        while let value = try reader.next() { values.append(value) }
        return values
    }

    @Test(arguments: cases.indices)
    func decodesEachType(index: Int) throws {
        let (text, expected) = Self.cases[index]
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: text))
        #expect(try drain(reader) == [expected])
    }

    @Test func decodesEverythingFedAtOnce() throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(bytes: Self.allBytes))
        #expect(try drain(reader) == Self.allValues)
    }

    @Test func decodesWhenSplitAtEveryByteBoundary() throws {
        let bytes = Self.allBytes
        for split in 0...bytes.count {
            let reader = RESPReader()
            var values: [RESPValue] = []
            try reader.feed(ByteBuffer(bytes: bytes[..<split]))
            values += try drain(reader)
            try reader.feed(ByteBuffer(bytes: bytes[split...]))
            values += try drain(reader)
            #expect(values == Self.allValues, "split at \(split)")
        }
    }

    @Test func decodesWhenFedOneByteAtATime() throws {
        let reader = RESPReader()
        var values: [RESPValue] = []
        for byte in Self.allBytes {
            try reader.feed(ByteBuffer(bytes: [byte]))
            values += try drain(reader)
        }
        #expect(values == Self.allValues)
    }

    @Test func incompleteReplyYieldsNothingYet() throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: "*2\r\n$3\r\nfoo\r\n"))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer(string: ":7\r\n"))
        #expect(try reader.next() == .array([.bulkString(ByteBuffer(string: "foo")), .integer(7)]))
        #expect(try reader.next() == nil)
    }

    @Test(arguments: ["?x\r\n", "$-5\r\n", "$abc\r\n", ":12x\r\n", "*-2\r\n"])
    func malformedStreamIsAStickyProtocolError(malformed: String) throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: "+OK\r\n" + malformed + "+OK\r\n"))
        #expect(try reader.next() == .simpleString("OK"))
        let first = #expect(throws: RedisError.self) { try reader.next() }
        #expect(first?.code == .protocolError)
        // Sticky: valid bytes afterwards change nothing.
        let second = #expect(throws: RedisError.self) { try reader.feed(ByteBuffer(string: "+OK\r\n")) }
        #expect(second == first)
        let third = #expect(throws: RedisError.self) { try reader.next() }
        #expect(third == first)
        #expect(reader.failure == first)
    }

    @Test func nestingDeeperThanSevenIsAProtocolErrorInHiredis014() throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: String(repeating: "*1\r\n", count: 7) + ":1\r\n"))
        var expected = RESPValue.integer(1)
        for _ in 0..<7 { expected = .array([expected]) }
        #expect(try reader.next() == expected)
        try reader.feed(ByteBuffer(string: String(repeating: "*1\r\n", count: 9) + ":1\r\n"))
        #expect(throws: RedisError.self) { try reader.next() }
    }

    @Test func recognisesMessagePushesOnlyWhenAsked() throws {
        let push = "*3\r\n$7\r\nmessage\r\n$14\r\nwebrtc:signals\r\n$4\r\na\r\n\0\r\n"
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: push + push + "*2\r\n$4\r\npong\r\n$0\r\n\r\n"))
        guard case .message(let message) = try reader.nextFrame(recognisingMessages: true) else {
            Issue.record("expected a message")
            return
        }
        #expect(message == RedisPubSubMessage(channel: "webrtc:signals", payload: ByteBuffer(bytes: [97, 13, 10, 0])))
        guard case .reply(let value) = try reader.nextFrame(recognisingMessages: false) else {
            Issue.record("expected a reply")
            return
        }
        #expect(value.array?.first?.string == "message")
        guard case .reply(let pong) = try reader.nextFrame(recognisingMessages: true) else {
            Issue.record("expected the PING reply")
            return
        }
        #expect(pong == .array([.bulkString(ByteBuffer(string: "pong")), .bulkString(ByteBuffer())]))
    }

    /// Messages on the same channel share one name, and a subscriber of more channels than the reader keeps
    /// names for still gets each message's own.
    @Test func channelNamesAreMadeOncePerChannel() throws {
        func push(_ channel: String) -> String { "*3\r\n$7\r\nmessage\r\n$\(channel.utf8.count)\r\n\(channel)\r\n$1\r\nx\r\n" }
        let channels = (0..<40).map { "webrtc:signals:node-\($0)" }
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: (channels + channels).map(push).joined()))
        var names: [String] = []
        while case .message(let message)? = try reader.nextFrame(recognisingMessages: true) { names.append(message.channel) }
        #expect(names == channels + channels)
        var first = names[0]
        var again = names[40]
        #expect(first.withUTF8 { $0.baseAddress } == again.withUTF8 { $0.baseAddress }, "one string for the channel")
    }
}
