import NIOCore

/// The application end of an accepted WebSocket, behind its `WebSocketSessionHandler`: a receiver the
/// session handler calls (no handler of its own), or a handler behind it in the pipeline.
struct WebSocketApplication {
    /// Takes whole messages by direct calls from the session handler (which also asks it whether a ping
    /// is answered and a read goes on), and writes through it.
    let receiver: (any WebSocketMessageReceiver)?
    /// Sees whole messages (`WebSocketMessage`) through the pipeline, writes `WebSocketFrame`s.
    let handler: (any ChannelHandler)?
    /// Completes when the connection's session can be reached (the 101 waits for it); `nil`: at once.
    let reachable: EventLoopFuture<Void>?

    init(receiver: any WebSocketMessageReceiver, reachable: EventLoopFuture<Void>? = nil) {
        self.receiver = receiver
        self.handler = nil
        self.reachable = reachable
    }

    init(handler: any ChannelHandler, reachable: EventLoopFuture<Void>? = nil) {
        self.receiver = nil
        self.handler = handler
        self.reachable = reachable
    }
}
