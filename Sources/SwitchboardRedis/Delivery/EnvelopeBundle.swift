import NIOCore

/// Several encoded envelopes for one node in one `PUBLISH`: what one event loop tick sends there.
///
/// Binary: `"B"`, version, then each envelope as a 32-bit length and its bytes. A payload that does not
/// start with `"B"` is a single envelope.
enum EnvelopeBundle {
    private static let magic = UInt8(ascii: "B")
    private static let version: UInt8 = 1

    /// One payload carrying `envelopes` in order.
    static func encode(_ envelopes: some Collection<ByteBuffer>) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(2 + envelopes.reduce(0) { $0 + 4 + $1.readableBytes })
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        for var envelope in envelopes {
            buffer.writeInteger(UInt32(envelope.readableBytes))
            buffer.writeBuffer(&envelope)
        }
        return buffer
    }

    /// Whether `payload` is a bundle (by its first byte), rather than one envelope.
    static func isBundle(_ payload: ByteBuffer) -> Bool {
        payload.getInteger(at: payload.readerIndex, as: UInt8.self) == magic
    }

    /// The envelopes in `payload`: itself when it is not a bundle; `nil` when it is a malformed one.
    static func split(_ payload: ByteBuffer) -> [ByteBuffer]? {
        guard isBundle(payload) else { return [payload] }
        var buffer = payload
        guard buffer.readInteger(as: UInt8.self) == magic, buffer.readInteger(as: UInt8.self) == version else {
            return nil
        }
        var envelopes: [ByteBuffer] = []
        while buffer.readableBytes > 0 {
            guard let length = buffer.readInteger(as: UInt32.self), let envelope = buffer.readSlice(length: Int(length)) else {
                return nil
            }
            envelopes.append(envelope)
        }
        return envelopes
    }
}
