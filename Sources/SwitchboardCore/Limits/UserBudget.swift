import SwitchboardBasics
import Synchronization

/// What one user may send (`limits.messages_per_second`, `limits.messages_burst`, PROTOCOL.md §9): every
/// frame a client sends takes a token, pings and heartbeats included, and the budget follows the user,
/// not the connection, so reconnecting does not refill it.
///
/// Shared by the user's connections on any thread; each connection holds its user's budget, so a
/// message costs one uncontended lock, not a table look-up.
///
/// An empty budget also tells a connection to stop reading (``readPause(now:)``) until it has refilled a
/// little: a client that keeps sending over its budget is then held back by TCP, at a bounded cost to the
/// node, instead of being read only to have its frames dropped.
package final class UserBudget: Sendable {
    /// What a message may do.
    package enum Verdict: Equatable, Sendable {
        /// Within the budget: handle it.
        case allowed
        /// Over the budget: drop it; `notify` says whether to tell the client (`rate-limited`), which
        /// happens at most once per `noticeInterval`.
        case refused(notify: Bool)
    }

    private struct State {
        var bucket: TokenBucket
        /// When the last `rate-limited` notice was allowed (monotonic ns); `nil` before the first.
        var lastNotice: UInt64?
    }

    private let state: Mutex<State>
    private let noticeInterval: UInt64
    private let resumeTokens: Int

    init(bucket: TokenBucket, noticeInterval: UInt64, resumeTokens: Int) {
        self.state = Mutex(State(bucket: bucket))
        self.noticeInterval = noticeInterval
        self.resumeTokens = max(resumeTokens, 1)
    }

    /// Takes a token for one message at `now` (monotonic nanoseconds).
    package func take(now: UInt64) -> Verdict {
        state.withLock { state in
            if state.bucket.take(now: now) { return .allowed }
            if let last = state.lastNotice, now &- last < noticeInterval { return .refused(notify: false) }
            state.lastNotice = now
            return .refused(notify: true)
        }
    }

    /// `nil` while the budget holds a token at `now`; when it is empty, the nanoseconds until it has refilled
    /// enough to resume reading (a quarter of a second's rate, at least one token).
    package func readPause(now: UInt64) -> UInt64? {
        state.withLock { state in
            guard state.bucket.nanoseconds(untilItHolds: 1, now: now) > 0 else { return nil }
            return state.bucket.nanoseconds(untilItHolds: resumeTokens, now: now)
        }
    }

    fileprivate func isFull(now: UInt64) -> Bool {
        state.withLock { $0.bucket.isFull(now: now) }
    }
}

/// Every user's ``UserBudget`` on this node. A user's budget is forgotten once it has refilled
/// completely (a full budget is what a new one is), so the table holds only users who sent within
/// the last refill time; sweeps run when it has doubled since the last one.
package final class UserBudgets: Sendable {
    private struct State {
        var budgets: [String: UserBudget] = [:]
        var sweepAt = 1024
    }

    private let messagesPerSecond: Int
    private let burst: Int
    private let noticeInterval: UInt64
    private let state = Mutex(State())

    /// Budgets of `messagesPerSecond` sustained with bursts of `burst`; `rate-limited` notices at most
    /// once per `noticeInterval` per user.
    package init(messagesPerSecond: Int, burst: Int, noticeInterval: Duration = .seconds(1)) {
        self.messagesPerSecond = messagesPerSecond
        self.burst = burst
        self.noticeInterval = UInt64(max(0, noticeInterval.wholeNanoseconds))
    }

    /// The budget of `user`: the one its earlier connections used, unless that had refilled.
    package func budget(of user: String, now: UInt64) -> UserBudget {
        state.withLock { state in
            if let budget = state.budgets[user] { return budget }
            if state.budgets.count >= state.sweepAt {
                state.budgets = state.budgets.filter { !$0.value.isFull(now: now) }
                state.sweepAt = max(1024, state.budgets.count * 2)
            }
            let budget = UserBudget(
                bucket: TokenBucket(rate: messagesPerSecond, per: .seconds(1), burst: burst, now: now),
                noticeInterval: noticeInterval,
                resumeTokens: messagesPerSecond / 4
            )
            state.budgets[user] = budget
            return budget
        }
    }

    /// How many users the table holds now (for tests).
    package var count: Int { state.withLock { $0.budgets.count } }
}
