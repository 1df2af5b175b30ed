import DequeModule
import SwitchboardProto

/// Messages waiting for one user, oldest first, bounded by ``KeptSignalLimits``: a message that does not
/// fit pushes the oldest out (one message always fits), and ``append(_:)`` answers what gave way.
struct KeptQueue: Sendable {
    private(set) var messages = Deque<ChatMessage>()
    private(set) var bytes = 0
    let limits: KeptSignalLimits

    init(limits: KeptSignalLimits) {
        self.limits = limits
    }

    var isEmpty: Bool { messages.isEmpty }

    /// Adds `message` last; answers the older messages that gave way to it, oldest first.
    mutating func append(_ message: ChatMessage) -> [ChatMessage] {
        messages.append(message)
        bytes += KeptSignalLimits.cost(of: message)
        var displaced: [ChatMessage] = []
        while messages.count > 1, messages.count > limits.count || bytes > limits.bytes {
            let oldest = messages.removeFirst()
            bytes -= KeptSignalLimits.cost(of: oldest)
            displaced.append(oldest)
        }
        return displaced
    }

    /// Everything, oldest first; the queue is empty after.
    mutating func removeAll() -> [ChatMessage] {
        defer {
            messages.removeAll()
            bytes = 0
        }
        return Array(messages)
    }
}
