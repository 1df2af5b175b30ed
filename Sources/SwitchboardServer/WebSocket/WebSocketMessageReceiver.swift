/// An application handler behind a ``WebSocketSessionHandler`` that takes each whole message by a direct
/// call instead of through the pipeline: one handler hop and one `NIOAny` box fewer per message.
///
/// Called on the channel's loop, exactly where its `channelRead` would have been (the read burst's
/// `channelReadComplete` still comes through the pipeline, after).
package protocol WebSocketMessageReceiver: AnyObject {
    func receive(_ message: WebSocketMessage)

    /// Whether a ping from the peer may be answered now (its sender's budget, say).
    func admitsPing() -> Bool
}

extension WebSocketMessageReceiver {
    /// Every ping is answered.
    package func admitsPing() -> Bool { true }
}
