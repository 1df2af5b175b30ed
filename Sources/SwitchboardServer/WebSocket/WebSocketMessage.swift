import NIOCore

/// One whole WebSocket message, reassembled from its frames by `WebSocketSessionHandler`.
///
/// Text messages have been validated as UTF-8; the payload is unmasked.
package enum WebSocketMessage: Sendable, Hashable {
    /// A text message (opcode 0x1): valid UTF-8.
    case text(ByteBuffer)
    /// A binary message (opcode 0x2).
    case binary(ByteBuffer)

    /// The message's payload, whatever its kind.
    package var payload: ByteBuffer {
        switch self {
        case .text(let buffer), .binary(let buffer): buffer
        }
    }
}
