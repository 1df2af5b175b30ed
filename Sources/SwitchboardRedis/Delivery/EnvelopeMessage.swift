import NIOCore
import SwitchboardCore
import SwitchboardProto

/// The serialized `ChatMessage` of a `deliver` envelope, handed to the engine as it is: a recipient here
/// gets these bytes in a frame, and the message is decoded only when the engine keeps it.
struct EnvelopeMessage: EncodedChatMessage {
    private let bytes: ByteBuffer
    let sender: String

    /// `nil` when `bytes` are not a well-formed protobuf message (its fields cannot be walked).
    init?(_ bytes: ByteBuffer) {
        guard let sender = Self.sender(in: bytes) else { return nil }
        self.bytes = bytes
        self.sender = sender
    }

    var byteCount: Int { bytes.readableBytes }

    func copyBytes(to destination: UnsafeMutableRawBufferPointer) {
        bytes.withUnsafeReadableBytes { destination.copyMemory(from: $0) }
    }

    func decoded() -> ChatMessage? { Self.decode(bytes) }

    /// The `ChatMessage` in `bytes`, decoded in place; `nil` when they are not one.
    static func decode(_ bytes: ByteBuffer) -> ChatMessage? {
        try? bytes.withUnsafeReadableBytes { try ChatMessage(serializedBytes: $0.bytes) }
    }

    /// `ChatMessage.from`'s field number.
    private static let fromField: UInt64 = 3

    /// The `from` field of the message in `bytes` (the last one, as a decoder takes it; "" when there is
    /// none), found by walking the fields without decoding them. `nil` when the walk fails.
    static func sender(in bytes: ByteBuffer) -> String? {
        var buffer = bytes
        var sender = ""
        while buffer.readableBytes > 0 {
            guard let key = buffer.readVarint() else { return nil }
            switch key & 7 {
            case 0:
                guard buffer.readVarint() != nil else { return nil }
            case 1:
                guard buffer.readSlice(length: 8) != nil else { return nil }
            case 2:
                guard let length = buffer.readVarint(), length <= buffer.readableBytes,
                    let field = buffer.readSlice(length: Int(length))
                else { return nil }
                if key >> 3 == fromField { sender = String(buffer: field) }
            case 5:
                guard buffer.readSlice(length: 4) != nil else { return nil }
            default:
                return nil  // groups (3, 4) are not in proto3; 6 and 7 do not exist
            }
        }
        return sender
    }
}

extension ByteBuffer {
    /// A protobuf base-128 varint, consumed; `nil` (nothing consumed) if it is cut short or over 10 bytes.
    fileprivate mutating func readVarint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var index = readerIndex
        while shift < 64, let byte = getInteger(at: index, as: UInt8.self) {
            value |= UInt64(byte & 0x7F) << shift
            index += 1
            guard byte & 0x80 != 0 else {
                moveReaderIndex(to: index)
                return value
            }
            shift += 7
        }
        return nil
    }
}
