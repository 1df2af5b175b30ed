import Synchronization

/// What a ``ConnectionSlot`` gives its place back to (the ``WebSocketGate`` that counts them).
protocol ConnectionSlotOwner: AnyObject, Sendable {
    func slotReleased()
}

/// One of the node's `websocket.max_connections` places, held by an upgraded connection.
///
/// Released once, by whichever comes first: the connection closing, or the server deciding to close it
/// (a replaced session frees its place at once, not after its close handshake, PROTOCOL.md §9).
final class ConnectionSlot: Sendable {
    private let released = Atomic<Bool>(false)
    /// A reference, not a closure: one allocation fewer per connection.
    private let owner: (any ConnectionSlotOwner)?

    /// A place of `owner`'s (`nil`: of nobody's, for tests).
    init(of owner: (any ConnectionSlotOwner)?) {
        self.owner = owner
    }

    /// Gives the place back; later calls do nothing.
    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        owner?.slotReleased()
    }
}
