import NIOCore

/// The application end of an accepted WebSocket: the handler that sits behind
/// `WebSocketSessionHandler`, and what that handler must ask it.
struct WebSocketApplication {
    /// Sees whole messages (`WebSocketMessage`), writes `WebSocketFrame`s.
    let handler: any ChannelHandler
    /// Whether a ping from the peer may be answered now (its sender's budget); `nil`: always.
    let admitsPing: (() -> Bool)?
    /// Completes when the connection's session can be reached (the 101 waits for it); `nil`: at once.
    let reachable: EventLoopFuture<Void>?

    init(handler: any ChannelHandler, admitsPing: (() -> Bool)? = nil, reachable: EventLoopFuture<Void>? = nil) {
        self.handler = handler
        self.admitsPing = admitsPing
        self.reachable = reachable
    }
}
