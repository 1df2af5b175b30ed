import NIOCore

/// The application end of an accepted WebSocket: the handler that sits behind
/// `WebSocketSessionHandler`, and what that handler must ask it.
struct WebSocketApplication {
    /// Sees whole messages (`WebSocketMessage`, by a direct call when it is a `WebSocketMessageReceiver`,
    /// which also decides whether a ping is answered), writes `WebSocketFrame`s.
    let handler: any ChannelHandler
    /// Completes when the connection's session can be reached (the 101 waits for it); `nil`: at once.
    let reachable: EventLoopFuture<Void>?

    init(handler: any ChannelHandler, reachable: EventLoopFuture<Void>? = nil) {
        self.handler = handler
        self.reachable = reachable
    }
}
