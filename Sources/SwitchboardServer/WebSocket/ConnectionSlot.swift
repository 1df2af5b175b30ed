import Synchronization

/// One of the node's `websocket.max_connections` places, held by an upgraded connection.
///
/// Released once, by whichever comes first: the connection closing, or the server deciding to close it
/// (a replaced session frees its place at once, not after its close handshake, PROTOCOL.md §9).
final class ConnectionSlot: Sendable {
    private let released = Atomic<Bool>(false)
    private let onRelease: @Sendable () -> Void

    init(onRelease: @escaping @Sendable () -> Void) {
        self.onRelease = onRelease
    }

    /// Gives the place back; later calls do nothing.
    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        onRelease()
    }
}
