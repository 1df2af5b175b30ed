import NIOConcurrencyHelpers

/// The current ``RedisConnectionState`` and its changes, for any number of listeners.
final class RedisStateBroadcaster: Sendable {
    private struct Storage {
        var state: RedisConnectionState = .disconnected
        var listeners: [Int: AsyncStream<RedisConnectionState>.Continuation] = [:]
        var nextListenerID = 0
    }

    private let storage = NIOLockedValueBox(Storage())

    /// The current state.
    var state: RedisConnectionState { storage.withLockedValue { $0.state } }

    /// A stream of the current state, then every change, until the listener stops iterating.
    func stream() -> AsyncStream<RedisConnectionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisConnectionState.self)
        let id = storage.withLockedValue { storage in
            let id = storage.nextListenerID
            storage.nextListenerID += 1
            storage.listeners[id] = continuation
            continuation.yield(storage.state)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.storage.withLockedValue { _ = $0.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sets the state; listeners hear of it when it changed.
    func publish(_ state: RedisConnectionState) {
        storage.withLockedValue { storage in
            guard storage.state != state else { return }
            storage.state = state
            // Yielding under the lock keeps every listener's order equal to the order of changes;
            // `yield` only enqueues (it never calls back into this type).
            for continuation in storage.listeners.values { continuation.yield(state) }
        }
    }

    /// Ends every listener's stream.
    func finish() {
        let listeners = storage.withLockedValue { storage in
            defer { storage.listeners = [:] }
            return Array(storage.listeners.values)
        }
        for continuation in listeners { continuation.finish() }
    }
}
