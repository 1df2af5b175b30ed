import NIOCore
import NIOWebSocket

/// Outbound user event: ask `WebSocketSessionHandler` to close the connection.
///
/// The handler sends one close frame with `code` and `reason`, ignores further inbound data and
/// drops TCP when the peer's close arrives or after `WebSocketSettings.closeTimeout`.
/// Send it with `context.closeWebSocket(code:reason:)`.
package struct WebSocketCloseRequest: Sendable, Equatable {
    /// The close code to send.
    package var code: WebSocketErrorCode
    /// The close reason; cut at a character boundary to fit the 123 bytes a close frame allows.
    package var reason: String

    /// A request to close with `code` and `reason`.
    package init(code: WebSocketErrorCode, reason: String = "") {
        self.code = code
        self.reason = reason
    }
}

/// Outbound user event: the application saw the peer alive (e.g. an application-level heartbeat).
///
/// `WebSocketSessionHandler` counts it like an inbound frame for the read timeout.
/// Send it with `context.reportWebSocketActivity()`.
package struct WebSocketActivity: Sendable, Hashable {
    /// The event.
    package init() {}
}

extension ChannelHandlerContext {
    /// Asks the `WebSocketSessionHandler` in front of this handler to close the connection.
    package func closeWebSocket(code: WebSocketErrorCode, reason: String = "", promise: EventLoopPromise<Void>? = nil) {
        self.triggerUserOutboundEvent(WebSocketCloseRequest(code: code, reason: reason), promise: promise)
    }

    /// Tells the `WebSocketSessionHandler` in front of this handler that the peer is alive.
    package func reportWebSocketActivity() {
        self.triggerUserOutboundEvent(WebSocketActivity(), promise: nil)
    }
}
