import NIOCore
import NIOWebSocket
import SwiftProtobuf
import SwitchboardProto

/// The hot-path wire code: `ChatMessage` frames written and scanned by hand, so the load generator spends
/// as little time per message as wsload does. Control frames (call set-up, notices) go through
/// `ChatMessage` and SwiftProtobuf; ``Wire/selfCheck()`` proves the two agree.
enum Wire {
    /// What every ice-candidate this tool sends carries just before its send time (µs, monotonic).
    static let marker: [UInt8] = Array("192.0.2.1 ".utf8)

    /// The ChatMessage fields the receiver needs, as offsets into the scanned bytes.
    struct Fields {
        var contentType: Int = 0
        var contentStart: Int = 0
        var contentLength: Int = 0
    }

    // MARK: - Encoding

    @inline(__always)
    static func writeVarint(_ value: UInt64, into buffer: inout ByteBuffer) {
        var v = value
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(truncatingIfNeeded: v))
    }

    /// A direct `ChatMessage` {to, content, contentType, messageType 1}, fields in number order, exactly as
    /// SwiftProtobuf serializes the same message (checked by ``selfCheck()``).
    static func writeDirectMessage(to: [UInt8], content: [UInt8], contentType: Int32, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(4 << 3 | 2))
        writeVarint(UInt64(to.count), into: &buffer)
        buffer.writeBytes(to)
        buffer.writeInteger(UInt8(5 << 3 | 2))
        writeVarint(UInt64(content.count), into: &buffer)
        buffer.writeBytes(content)
        buffer.writeInteger(UInt8(6 << 3))
        writeVarint(UInt64(contentType), into: &buffer)
        buffer.writeInteger(UInt8(8 << 3))
        writeVarint(1, into: &buffer)
    }

    /// Appends one complete client WebSocket frame (FIN set, masked with the all-zero key, so the payload goes
    /// as it is; RFC 6455 §5.2): what `WebSocketFrameEncoder` writes for the same frame.
    static func writeClientFrame(opcode: WebSocketOpcode, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | UInt8(webSocketOpcode: opcode))
        let length = payload.readableBytes
        if length < 126 {
            buffer.writeInteger(0x80 | UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeInteger(UInt32(0))  // the masking key
        buffer.writeImmutableBuffer(payload)
    }

    /// Appends the decimal digits of `value` (≥ 0).
    @inline(__always)
    static func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
        var digits = 0
        var rest = value
        repeat {
            digits += 1
            rest /= 10
        } while rest > 0
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        rest = value
        var index = start + digits - 1
        while rest > 0 {
            bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        }
    }

    // MARK: - Scanning

    @inline(__always)
    static func readVarint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// Finds `contentType` and `content` in a serialized ChatMessage; nil when the bytes are not a valid message.
    static func scan(_ bytes: UnsafeRawBufferPointer) -> Fields? {
        var fields = Fields()
        var i = 0
        let n = bytes.count
        while i < n {
            guard let key = readVarint(bytes, &i) else { return nil }
            let field = key >> 3
            switch key & 7 {
            case 0:
                guard let value = readVarint(bytes, &i) else { return nil }
                if field == 6 { fields.contentType = Int(truncatingIfNeeded: value) }
            case 2:
                guard let length = readVarint(bytes, &i), length <= UInt64(n - i) else { return nil }
                if field == 5 {
                    fields.contentStart = i
                    fields.contentLength = Int(length)
                }
                i += Int(length)
            case 1:
                guard n - i >= 8 else { return nil }
                i += 8
            case 5:
                guard n - i >= 4 else { return nil }
                i += 4
            default:
                return nil
            }
        }
        return fields
    }

    /// The unsigned decimal number starting at `start` in `bytes`, nil when there is no digit there.
    @inline(__always)
    static func readDecimal(_ bytes: UnsafeRawBufferPointer, from start: Int, end: Int) -> UInt64? {
        var i = start
        var value: UInt64 = 0
        while i < end {
            let byte = bytes[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            value = value &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
            i += 1
        }
        return i > start ? value : nil
    }

    /// The offset of `needle` (non-empty) in `bytes[start..<end]`, or nil.
    @inline(__always)
    static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int, end: Int) -> Int? {
        let first = needle[0]
        let count = needle.count
        var i = start
        let last = end - count
        while i <= last {
            if bytes[i] == first {
                var k = 1
                while k < count && bytes[i + k] == needle[k] { k += 1 }
                if k == count { return i }
            }
            i += 1
        }
        return nil
    }

    // MARK: - Control messages

    /// The raw (still JSON-escaped) string value of `"key"` at the top of a compact JSON object, or nil.
    ///
    /// Enough for the server's notices and relayed signals (PROTOCOL.md §3-4), whose values this tool only
    /// compares (`type`, `reason`) or copies back into JSON verbatim (`callId`), so no unescaping is needed.
    static func rawStringField(_ key: String, in json: String) -> Substring? {
        guard let keyRange = json.firstRange(of: "\"\(key)\"") else { return nil }
        var index = keyRange.upperBound
        func skipSpaces() {
            while index < json.endIndex, json[index] == " " || json[index] == "\n" || json[index] == "\t" {
                index = json.index(after: index)
            }
        }
        skipSpaces()
        guard index < json.endIndex, json[index] == ":" else { return nil }
        index = json.index(after: index)
        skipSpaces()
        guard index < json.endIndex, json[index] == "\"" else { return nil }
        let start = json.index(after: index)
        var cursor = start
        var escaped = false
        while cursor < json.endIndex {
            let character = json[cursor]
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                return json[start..<cursor]
            }
            cursor = json.index(after: cursor)
        }
        return nil
    }

    /// A direct signal (`contentType` 6) as SwiftProtobuf serializes it.
    static func signalMessage(to: String, content: String) throws -> [UInt8] {
        var message = ChatMessage()
        message.to = to
        message.content = content
        message.contentType = 6
        message.messageType = 1
        return try message.serializedBytes()
    }

    /// Checks at start-up that the hand-written encoder and scanner agree with SwiftProtobuf's `ChatMessage`.
    static func selfCheck() throws {
        let to = "sbcheckb0"
        let content =
            #"{"type":"ice-candidate","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 123 typ host é"}}"#
        var buffer = ByteBuffer()
        writeDirectMessage(to: Array(to.utf8), content: Array(content.utf8), contentType: 6, into: &buffer)
        let handWritten = Array(buffer.readableBytesView)
        guard handWritten == (try signalMessage(to: to, content: content)) else {
            throw BenchError.selfCheck("hand-written ChatMessage differs from SwiftProtobuf's")
        }
        var relayed = try ChatMessage(serializedBytes: handWritten)
        relayed.from = "sbchecka0"
        relayed.timestamp = 1_700_000_000_000
        relayed.unknownFields = UnknownStorage()
        let relayedBytes: [UInt8] = try relayed.serializedBytes()
        let ok = relayedBytes.withUnsafeBytes { raw -> Bool in
            guard let fields = scan(raw), fields.contentType == 6 else { return false }
            let end = fields.contentStart + fields.contentLength
            guard let at = find(marker, in: raw, from: fields.contentStart, end: end) else { return false }
            return readDecimal(raw, from: at + marker.count, end: end) == 123
        }
        guard ok else { throw BenchError.selfCheck("scanner cannot read a relayed ChatMessage") }
        var digits: [UInt8] = []
        for value: UInt64 in [0, 9, 10, 99, 100, 12_345_678_901, UInt64.max] {
            digits.removeAll()
            appendDecimal(value, to: &digits)
            guard String(decoding: digits, as: UTF8.self) == String(value) else {
                throw BenchError.selfCheck("decimal writer is wrong for \(value)")
            }
        }
    }
}
