import NIOCore
import SwitchboardCore

/// What one node publishes to another's inbox.
///
/// Binary: `"S"`, version, kind, flags, the origin's incarnation and sequence number (8 bytes each), origin
/// node, user, call effect, then the serialized `ChatMessage` to the end. Strings are UTF-8 with a 16-bit
/// length. The sequence number is written by ``NodeOutbox`` into the encoded bytes at ``sequenceOffset``.
struct Envelope: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        /// Deliver `message` to `user`, a user of the receiving node.
        case deliver = 1
        /// The receiving node sent a `deliver` for `user` to a node that does not have the user.
        case bounce = 2
        /// `user` connected on the origin node: close their session on the receiving node (4001).
        case replace = 3
        /// The origin lost envelopes the receiving node sent it: `message` holds the receiving node's
        /// incarnation and the first and last missing numbers (8 bytes each); publish them again.
        case replay = 4
    }

    var kind: Kind
    /// The node that sent the envelope.
    var origin: String
    /// The recipient (`deliver`, `bounce`) or the replaced user (`replace`).
    var user: String
    /// What the message does to the recipient's call, for the receiving node's mirror of calls.
    var effect: CallEffect = .none
    /// Set on a `deliver` sent again after a bounce: a second bounce is final.
    var isRetry = false
    /// The serialized `ChatMessage` (empty for `replace`).
    var message: ByteBuffer = ByteBuffer()
    /// Which run of the origin node sent it (a restarted node starts a new sequence).
    var incarnation: UInt64 = 0
    /// The envelope's place among those the origin run sent to the receiving node.
    var sequence: UInt64 = 0

    /// Where ``sequence`` sits in the encoded bytes.
    static let sequenceOffset = 12

    private static let magic = UInt8(ascii: "S")
    private static let version: UInt8 = 1
}

/// A malformed envelope (another version of the node, or not ours).
struct EnvelopeError: Error, Equatable {
    let message: String
}

extension Envelope {
    /// The envelope as bytes for `PUBLISH`.
    func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = encodedHeader(allocator: allocator, messageBytes: message.readableBytes)
        buffer.writeImmutableBuffer(message)
        return buffer
    }

    /// The envelope as bytes for `PUBLISH`, with `messageBytes` (a serialized `ChatMessage`) in place
    /// of ``message``: copied once, straight behind the header.
    func encoded(messageBytes: [UInt8], allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = encodedHeader(allocator: allocator, messageBytes: messageBytes.count)
        buffer.writeBytes(messageBytes)
        return buffer
    }

    /// Everything before the message, in a buffer with room for `messageBytes` more.
    private func encodedHeader(allocator: ByteBufferAllocator, messageBytes: Int) -> ByteBuffer {
        var buffer = allocator.buffer(
            capacity: Self.headerCapacity(of: effect) + origin.utf8.count + user.utf8.count + messageBytes
        )
        buffer.writeInteger(Self.magic)
        buffer.writeInteger(Self.version)
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(isRetry ? 1 as UInt8 : 0)
        buffer.writeInteger(incarnation)
        buffer.writeInteger(sequence)
        buffer.writeShortString(origin)
        buffer.writeShortString(user)
        switch effect {
        case .none:
            buffer.writeInteger(0 as UInt8)
        case .update(let call):
            buffer.writeInteger(1 as UInt8)
            buffer.writeShortString(call.id)
            buffer.writeShortString(call.caller)
            buffer.writeShortString(call.callee)
            buffer.writeInteger(UInt8(call.callType.rawValue))
            buffer.writeInteger(call.state == .active ? 1 as UInt8 : 0)
            buffer.writeInteger(call.createdAt)
            buffer.writeInteger(call.startedAt ?? -1)
        case .end(let callId):
            buffer.writeInteger(2 as UInt8)
            buffer.writeShortString(callId)
        }
        return buffer
    }

    /// The fixed fields, string lengths and the call effect's strings: what the header takes besides
    /// the origin and the user.
    private static func headerCapacity(of effect: CallEffect) -> Int {
        switch effect {
        case .none: 32
        case .update(let call): 64 + call.id.utf8.count + call.caller.utf8.count + call.callee.utf8.count
        case .end(let callId): 32 + callId.utf8.count
        }
    }

    /// Decodes what ``encoded(allocator:)`` wrote.
    init(decoding bytes: ByteBuffer) throws(EnvelopeError) {
        var buffer = bytes
        guard buffer.readInteger(as: UInt8.self) == Self.magic, buffer.readInteger(as: UInt8.self) == Self.version,
            let kindByte = buffer.readInteger(as: UInt8.self), let kind = Kind(rawValue: kindByte),
            let flags = buffer.readInteger(as: UInt8.self),
            let incarnation = buffer.readInteger(as: UInt64.self), let sequence = buffer.readInteger(as: UInt64.self),
            let origin = buffer.readShortString(), let user = buffer.readShortString(),
            let effectTag = buffer.readInteger(as: UInt8.self)
        else { throw EnvelopeError(message: "not a Switchboard envelope (version \(Self.version))") }
        let effect: CallEffect
        switch effectTag {
        case 0:
            effect = .none
        case 1:
            guard let id = buffer.readShortString(), let caller = buffer.readShortString(),
                let callee = buffer.readShortString(),
                let typeByte = buffer.readInteger(as: UInt8.self), let callType = CallType(rawValue: Int(typeByte)),
                let stateByte = buffer.readInteger(as: UInt8.self),
                let createdAt = buffer.readInteger(as: Int64.self), let startedAt = buffer.readInteger(as: Int64.self)
            else { throw EnvelopeError(message: "truncated call in envelope") }
            effect = .update(
                Call(
                    id: id,
                    caller: caller,
                    callee: callee,
                    callType: callType,
                    createdAt: createdAt,
                    state: stateByte == 1 ? .active : .ringing,
                    startedAt: startedAt < 0 ? nil : startedAt
                )
            )
        case 2:
            guard let id = buffer.readShortString() else { throw EnvelopeError(message: "truncated call id in envelope") }
            effect = .end(callId: id)
        default:
            throw EnvelopeError(message: "unknown call effect \(effectTag)")
        }
        self.init(
            kind: kind,
            origin: origin,
            user: user,
            effect: effect,
            isRetry: flags & 1 == 1,
            message: buffer,
            incarnation: incarnation,
            sequence: sequence
        )
    }
}

extension ByteBuffer {
    fileprivate mutating func writeShortString(_ string: String) {
        let length = string.utf8.count
        precondition(length <= UInt16.max, "envelope strings are ids: short by construction")
        writeInteger(UInt16(length))
        writeString(string)
    }

    fileprivate mutating func readShortString() -> String? {
        guard let length = readInteger(as: UInt16.self) else { return nil }
        return readString(length: Int(length))
    }
}
