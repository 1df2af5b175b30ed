/// Why `WebSocketSessionHandler` refused an outbound write.
package struct WebSocketSessionError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case closing
    }

    private let code: Code

    /// The connection is closing (a close frame was sent): no more frames may be written.
    package static let closing = WebSocketSessionError(code: .closing)

    package var description: String {
        switch code {
        case .closing: "WebSocket connection is closing"
        }
    }
}
