import DequeModule
import NIOCore

/// The command pipeline of one connection as a pure value: events in, actions out.
///
/// Replies arrive in the order commands were written, so pending commands form a FIFO. A
/// single timer watches the oldest pending command: when it fires and that command is past
/// its deadline, every pending command fails and the connection must close (later replies
/// could no longer be matched); otherwise the timer is re-armed for the new oldest command.
/// That is at most one timer per timeout period, whatever the command rate.
///
/// Generic over the promise type so that it can be tested without an event loop.
struct RedisConnectionStateMachine<Promise> {
    struct PendingCommand {
        var promise: Promise
        /// Replies still expected (`SUBSCRIBE a b` gets one confirmation per channel).
        var remainingReplies: Int
        var deadline: NIODeadline?
    }

    private enum State {
        case active(Deque<PendingCommand>)
        /// Closed or closing: `cause` is why, for the errors of later commands.
        case closed(cause: RedisError)
        /// Transient, while a mutating method edits the pending queue in place (keeps it uniquely referenced).
        case modifying
    }

    private var state: State = .active([])
    private var timerArmed = false

    /// `true` until the connection failed or closed.
    var isActive: Bool {
        if case .active = state { return true }
        return false
    }

    /// The number of commands waiting for replies.
    var pendingCount: Int {
        if case .active(let pending) = state { return pending.count }
        return 0
    }

    enum EnqueueAction {
        /// Write the command; arm the timeout timer for `armTimerAt` when it is not `nil`.
        case write(armTimerAt: NIODeadline?)
        /// Do not write: fail the promise.
        case fail(Promise, RedisError)
    }

    /// A command is about to be written, expecting `replies` replies, to be answered by `deadline`.
    mutating func enqueue(_ promise: Promise, replies: Int = 1, deadline: NIODeadline?) -> EnqueueAction {
        switch state {
        case .closed(let cause):
            return .fail(promise, Self.closedError(cause))
        case .modifying:
            preconditionFailure("RedisConnectionStateMachine re-entered while modifying")
        case .active(var pending):
            state = .modifying
            pending.append(PendingCommand(promise: promise, remainingReplies: max(replies, 1), deadline: deadline))
            var armAt: NIODeadline?
            if !timerArmed, let headDeadline = pending.first?.deadline {
                timerArmed = true
                armAt = headDeadline
            }
            state = .active(pending)
            return .write(armTimerAt: armAt)
        }
    }

    enum ReplyAction {
        /// Nothing to complete (a multi-reply command still waits, or the connection is closed).
        case none
        /// Complete the oldest command with the reply.
        case succeed(Promise, RESPValue)
        /// The server answered the oldest command with an error reply.
        case fail(Promise, RedisError)
        /// A reply that no command asked for: fail these and close the connection.
        case close(failing: [Promise], RedisError)
    }

    /// A complete reply arrived.
    mutating func receive(_ value: RESPValue) -> ReplyAction {
        guard case .active(var pending) = state else { return .none }
        state = .modifying
        guard var head = pending.first else {
            let error = RedisError(code: .protocolError, message: "unexpected reply with no pending command: \(value)")
            state = .closed(cause: error)
            return .close(failing: [], error)
        }
        if case .error(let message) = value {
            pending.removeFirst()
            state = .active(pending)
            return .fail(head.promise, .server(message))
        }
        head.remainingReplies -= 1
        if head.remainingReplies > 0 {
            pending[pending.startIndex] = head
            state = .active(pending)
            return .none
        }
        pending.removeFirst()
        state = .active(pending)
        return .succeed(head.promise, value)
    }

    enum TimerAction {
        case none
        /// Arm the timer again, for the oldest command's deadline.
        case arm(NIODeadline)
        /// The oldest command timed out: fail these with the error and close the connection.
        case close(failing: [Promise], RedisError)
    }

    /// The timeout timer fired at `now`.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        timerArmed = false
        guard case .active(let pending) = state, let head = pending.first, let deadline = head.deadline else {
            return .none
        }
        if deadline > now {
            timerArmed = true
            return .arm(deadline)
        }
        let error = RedisError(code: .timeout, message: "no reply within the command timeout")
        state = .closed(cause: error)
        return .close(failing: pending.map(\.promise), error)
    }

    /// The connection must close because of `error` (a malformed stream, an I/O error, a local close):
    /// returns the commands to fail with it.
    mutating func fail(_ error: RedisError) -> [Promise] {
        guard case .active(let pending) = state else { return [] }
        state = .closed(cause: error)
        return pending.map(\.promise)
    }

    /// The channel went inactive: returns the commands to fail with ``RedisError/Code/connectionClosed``.
    mutating func channelClosed() -> [Promise] {
        fail(RedisError(code: .connectionClosed, message: "connection closed"))
    }

    private static func closedError(_ cause: RedisError) -> RedisError {
        if cause.code == .connectionClosed { return cause }
        return RedisError(code: .connectionClosed, message: "connection closed (\(cause.code): \(cause.message))")
    }
}
