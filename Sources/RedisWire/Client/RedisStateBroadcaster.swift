import NIOConcurrencyHelpers

/// The current ``RedisConnectionState`` and its changes, for any number of listeners.
final class RedisStateBroadcaster: Sendable {
    private struct Storage {
        var state: RedisConnectionState = .disconnected
        var listeners: [Int: AsyncStream<RedisConnectionState>.Continuation] = [:]
        var nextListenerID = 0
        var finished = false
    }

    private let storage = NIOLockedValueBox(Storage())

    /// The current state.
    var state: RedisConnectionState { storage.withLockedValue { $0.state } }

    /// A stream of the current state, then every change, until the listener stops iterating or
    /// ``finish()`` is called (after which new streams hold just the current state).
    func stream() -> AsyncStream<RedisConnectionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisConnectionState.self)
        let id: Int? = storage.withLockedValue { storage in
            continuation.yield(storage.state)
            guard !storage.finished else { return nil }
            let id = storage.nextListenerID
            storage.nextListenerID += 1
            storage.listeners[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
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

    /// Ends every listener's stream, for good.
    func finish() {
        let listeners = storage.withLockedValue { storage in
            storage.finished = true
            defer { storage.listeners = [:] }
            return Array(storage.listeners.values)
        }
        for continuation in listeners { continuation.finish() }
    }
}
