import DequeModule
import SwitchboardBasics
import SwitchboardProto
import Synchronization

/// The ``KeptSignalStore`` of a single node, answering at once on the caller's thread.
///
/// `whereIs` and `callOf` are the node's presence (the node of a user's session) and calls; they are called with this store's lock
/// held, so they must not call back into it. What is kept for a user lasts the reconnect grace from
/// their ``away(_:callId:then:)``: expired entries are dropped by the next operation (oldest first, so
/// each costs O(1) amortised).
package final class InProcessKeptSignals: KeptSignalStore {
    private struct Away {
        var callId: String
        var deadline: UInt64
        var queue: KeptQueue
    }

    private struct Book {
        var away: [String: Away] = [:]
        /// Who left when, in order of their deadlines (the grace is one length for everyone).
        var expiries = Deque<(deadline: UInt64, user: String)>()
    }

    private let book = Mutex(Book())
    private let limits: KeptSignalLimits
    private let grace: Duration
    private let whereIs: @Sendable (String) -> String?
    private let callOf: @Sendable (String) -> Call?
    private let monotonicNanoseconds: @Sendable () -> UInt64

    package init(
        limits: KeptSignalLimits = .standard,
        grace: Duration,
        clock: SwitchboardClock,
        whereIs: @escaping @Sendable (String) -> String?,
        callOf: @escaping @Sendable (String) -> Call?
    ) {
        self.limits = limits
        self.grace = grace
        self.whereIs = whereIs
        self.callOf = callOf
        self.monotonicNanoseconds = clock.monotonicNanoseconds
    }

    /// How many users have signals kept, or are away (for tests).
    package var awayCount: Int { book.withLock { $0.away.count } }

    package func away(_ user: String, callId: String, then done: @escaping @Sendable () -> Void) {
        book.withLock { book in
            let now = expire(&book)
            guard whereIs(user) == nil else { return }
            mark(user, callId: callId, now: now, in: &book)
        }
        done()
    }

    package func keep(
        _ message: ChatMessage,
        for user: String,
        callId: String,
        then done: @escaping @Sendable (Result<KeepOutcome, KeptSignalsUnavailable>) -> Void
    ) {
        let outcome = book.withLock { book -> KeepOutcome in
            let now = expire(&book)
            if let node = whereIs(user) { return .present(node: node) }
            if book.away[user]?.callId != callId {
                // Not marked for this call (the session closed a moment ago): away while still a party.
                guard callOf(user)?.id == callId else { return .notAway }
                mark(user, callId: callId, now: now, in: &book)
            }
            return .kept(displaced: book.away[user]!.queue.append(message))
        }
        done(.success(outcome))
    }

    package func resume(_ user: String, then done: @escaping @Sendable (Result<Resumption, KeptSignalsUnavailable>) -> Void) {
        let resumption = book.withLock { book -> Resumption in
            _ = expire(&book)
            guard var away = book.away.removeValue(forKey: user) else {
                return Resumption(wasAway: false, call: callOf(user), kept: [])
            }
            return Resumption(wasAway: true, call: callOf(user), kept: away.queue.removeAll())
        }
        done(.success(resumption))
    }

    package func discard(_ user: String) {
        book.withLock { _ = $0.away.removeValue(forKey: user) }
    }

    /// Marks `user` away from `callId` from `now`, dropping what was kept for an earlier call.
    private func mark(_ user: String, callId: String, now: UInt64, in book: inout Book) {
        let deadline = now + UInt64(grace.wholeNanoseconds)
        if book.away[user]?.callId == callId {
            book.away[user]?.deadline = deadline
        } else {
            book.away[user] = Away(callId: callId, deadline: deadline, queue: KeptQueue(limits: limits))
        }
        book.expiries.append((deadline, user))
    }

    /// Drops the users whose grace ran out; answers the time now.
    private func expire(_ book: inout Book) -> UInt64 {
        let now = monotonicNanoseconds()
        while let first = book.expiries.first, first.deadline <= now {
            book.expiries.removeFirst()
            // A later mark of the same user moved their deadline on: that entry decides.
            if let away = book.away[first.user], away.deadline <= now { book.away[first.user] = nil }
        }
        return now
    }
}
