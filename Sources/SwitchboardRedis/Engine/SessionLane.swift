import DequeModule
import Synchronization
import SwitchboardProto

/// Keeps one session's messages in order while some of them wait for Redis.
///
/// A message is handled at once, on the caller's thread, unless an earlier one is still waiting; then it
/// queues behind it. The lane starts busy while the session's presence registers, so nothing the user
/// sends overtakes their arrival in the cluster.
final class SessionLane: Sendable {
    /// Handles one message; returns `true` when done, or `false` and calls `resume` once done later.
    typealias Handler = @Sendable (_ message: ChatMessage, _ resume: @escaping @Sendable () -> Void) -> Bool

    private struct State {
        var busy: Bool
        var backlog = Deque<ChatMessage>()
    }

    private let state: Mutex<State>
    private let capacity: Int
    private let handler: Handler

    /// - Parameters:
    ///   - capacity: how many messages may wait; more are refused by ``submit(_:)``.
    ///   - startsBusy: hold messages until the first ``resume()``.
    init(capacity: Int, startsBusy: Bool, handler: @escaping Handler) {
        self.state = Mutex(State(busy: startsBusy))
        self.capacity = capacity
        self.handler = handler
    }

    /// Handles `message` now, or after the messages before it; `false` if too many are waiting.
    func submit(_ message: ChatMessage) -> Bool {
        let runNow = state.withLock { state -> Bool? in
            guard state.busy else {
                state.busy = true
                return true
            }
            guard state.backlog.count < capacity else { return nil }
            state.backlog.append(message)
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
            if let message = state.backlog.popFirst() { return message }
            state.busy = false
            return nil
        }
    }
}
