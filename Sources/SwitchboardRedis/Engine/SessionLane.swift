import DequeModule
import Synchronization
import SwitchboardProto

/// Keeps one session's messages in order while some of them wait for Redis.
///
/// A message is handled at once, on the caller's thread, unless an earlier one is still waiting; then it
/// queues behind it. The lane starts busy while the session's presence registers, so nothing the user
/// sends overtakes their arrival in the cluster.
///
/// What waits is bounded in messages and in bytes (PROTOCOL.md §9): a client sending big messages while
/// one waits for Redis cannot make the node hold more than `capacityBytes` for it (one message always
/// fits into an empty backlog).
final class SessionLane: Sendable {
    /// Handles one message; returns `true` when done, or `false` and calls `resume` once done later.
    typealias Handler = @Sendable (_ message: ChatMessage, _ resume: @escaping @Sendable () -> Void) -> Bool

    private struct State {
        var busy: Bool
        var backlog = Deque<ChatMessage>()
        /// What the backlog counts (``SessionLane/cost(of:)``).
        var backlogBytes = 0
    }

    private let state: Mutex<State>
    private let capacity: Int
    private let capacityBytes: Int
    private let handler: Handler

    /// - Parameters:
    ///   - capacity: how many messages may wait; more are refused by ``submit(_:)``.
    ///   - capacityBytes: how many bytes of messages may wait (``cost(of:)``); more are refused too.
    ///   - startsBusy: hold messages until the first ``resume()``.
    init(capacity: Int, capacityBytes: Int = .max, startsBusy: Bool, handler: @escaping Handler) {
        self.state = Mutex(State(busy: startsBusy))
        self.capacity = capacity
        self.capacityBytes = capacityBytes
        self.handler = handler
    }

    /// Handles `message` now, or after the messages before it; `false` if too many are waiting.
    func submit(_ message: ChatMessage) -> Bool {
        let runNow = state.withLock { state -> Bool? in
            guard state.busy else {
                state.busy = true
                return true
            }
            let cost = Self.cost(of: message)
            guard state.backlog.count < capacity,
                state.backlog.isEmpty || state.backlogBytes + cost <= capacityBytes
            else { return nil }
            state.backlog.append(message)
            state.backlogBytes += cost
            return false
        }
        guard let runNow else { return false }
        if runNow { drain(from: message) }
        return true
    }

    /// Ends the wait the lane is in and handles what queued meanwhile.
    func resume() {
        if let next = next() { drain(from: next) }
    }

    private func drain(from first: ChatMessage) {
        var message: ChatMessage? = first
        while let current = message {
            guard handler(current, { [self] in resume() }) else { return }
            message = next()
        }
    }

    /// The next queued message, or `nil` after marking the lane idle.
    private func next() -> ChatMessage? {
        state.withLock { state in
            if let message = state.backlog.popFirst() {
                state.backlogBytes -= Self.cost(of: message)
                return message
            }
            state.backlog = Deque()  // a burst's storage goes back
            state.busy = false
            return nil
        }
    }
}

extension SessionLane {
    /// What a waiting message counts: its variable-length fields and a fixed overhead.
    static func cost(of message: ChatMessage) -> Int {
        256 + message.content.utf8.count + message.file.count + message.url.utf8.count + message.avatar.utf8.count
            + message.fromUsername.utf8.count + message.from.utf8.count + message.to.utf8.count
            + message.type.utf8.count + message.fileSuffix.utf8.count
    }
}
