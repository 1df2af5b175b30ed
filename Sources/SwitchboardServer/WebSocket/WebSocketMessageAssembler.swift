import NIOCore
import NIOWebSocket

/// Joins data frames into whole messages (RFC 6455 §5.4), one connection's worth of state.
///
/// Fed only text, binary and continuation frames; control frames may arrive between fragments
/// and are none of its business.
struct WebSocketMessageAssembler {
    /// What one data frame led to.
    enum Outcome {
        /// A fragment was stored; the message is not complete yet.
        case incomplete
        /// A whole message.
        case message(WebSocketMessage)
        /// The peer broke a rule: fail the connection with this code.
        case failure(WebSocketErrorCode, reason: String)
    }

    /// The largest message accepted, all fragments together.
    let maxMessageBytes: Int
    /// The fragments of the message being received, joined; `nil` between messages.
    private var partial: ByteBuffer?
    /// Whether `partial` is a text message.
    private var partialIsText = false

    /// An assembler accepting messages of up to `maxMessageBytes`.
    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Takes a text, binary or continuation frame (already checked for mask and reserved bits).
    mutating func receive(_ frame: ClientFrame) -> Outcome {
        if frame.opcode == .continuation {
            return receiveContinuation(frame)
        }
        guard partial == nil else {
            return .failure(.protocolError, reason: "data frame inside a fragmented message")
        }
        guard frame.length <= maxMessageBytes else {
            return .failure(.messageTooLarge, reason: "message too large")
        }
        let isText = frame.opcode == .text
        if frame.fin {
            return Self.complete(frame.payload, isText: isText)
        }
        partial = frame.payload
        partialIsText = isText
        return .incomplete
    }

    /// Drops a half-received message (the connection is closing).
    mutating func reset() {
        partial = nil
    }

    private mutating func receiveContinuation(_ frame: ClientFrame) -> Outcome {
        guard var message = partial else {
            return .failure(.protocolError, reason: "continuation without a message")
        }
        partial = nil  // keeps `message` uniquely referenced while appending
        guard message.readableBytes + frame.length <= maxMessageBytes else {
            return .failure(.messageTooLarge, reason: "message too large")
        }
        var fragment = frame.payload
        message.writeBuffer(&fragment)
        if frame.fin {
            return Self.complete(message, isText: partialIsText)
        }
        partial = message
        return .incomplete
    }

    /// A whole message, once a text message has proved to be UTF-8 (1007 otherwise).
    private static func complete(_ payload: ByteBuffer, isText: Bool) -> Outcome {
        guard isText else { return .message(.binary(payload)) }
        guard payload.readableBytesAreValidUTF8 else {
            return .failure(.dataInconsistentWithMessage, reason: "invalid UTF-8")
        }
        return .message(.text(payload))
    }
}
