/// The application end of a ``WebSocketSessionHandler`` that takes each whole message by a direct call
/// instead of through the pipeline: one handler hop and one `NIOAny` box fewer per message.
///
/// Called on the channel's loop, exactly where its `channelRead` would have been. A receiver given to
/// the session handler before it joins the pipeline (``WebSocketSessionHandler/init(limits:receiver:)``)
/// needs no handler, nor a pipeline context, of its own: the session handler also tells it what the
/// pipeline would (the end of a read burst, each `read()`, the channel's end). A handler behind the
/// session handler can ask for the direct calls too (``WebSocketSessionHandler/deliverMessages(to:)``);
/// it still sees the pipeline's events itself.
package protocol WebSocketMessageReceiver: AnyObject {
    func receive(_ message: WebSocketMessage)

    /// Whether a ping from the peer may be answered now (its sender's budget, say).
    func admitsPing() -> Bool

    /// The session handler is in the pipeline and writes for this receiver from now on
    /// (``WebSocketSessionHandler/send(binary:)``, ``WebSocketSessionHandler/flush()``).
    func attached(to session: WebSocketSessionHandler)

    /// Whether the pipeline's `read()` may go on now. A receiver that says no passes the read on later
    /// with ``WebSocketSessionHandler/readAgain()``.
    func admitsRead() -> Bool

    /// The end of a read burst (the pipeline's `channelReadComplete`).
    func readComplete()

    /// The channel is closed; nothing more comes.
    func sessionClosed()

    /// The upgrade this receiver was made for did not complete (the channel closed first, say): no
    /// session handler came, and none will. Called by whoever made it, on the channel's loop.
    func upgradeFailed()
}

extension WebSocketMessageReceiver {
    /// Every ping is answered.
    package func admitsPing() -> Bool { true }
    package func attached(to session: WebSocketSessionHandler) {}
    package func admitsRead() -> Bool { true }
    package func readComplete() {}
    package func sessionClosed() {}
    package func upgradeFailed() {}
}
