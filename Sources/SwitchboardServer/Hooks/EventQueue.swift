import DequeModule

/// Call events waiting to be posted to `hooks.events_url`, in order per call (PROTOCOL.md §10).
///
/// Each call's events form a line: only its first is ever being posted (or waiting for a retry), so a
/// call's events arrive in order, while other calls' go on. What waits is bounded in events and in
/// bytes: a new event beyond either is refused (the caller gives it up). A value type, used under its
/// owner's lock; times are monotonic milliseconds.
struct EventQueue {
    /// One event: its call and the JSON line to post.
    struct Event: Equatable {
        let callId: String
        let body: [UInt8]
        /// Failed deliveries so far.
        var failures = 0
        /// When the first delivery failed (the retry window starts there).
        var firstFailedAt: Int64?
    }

    /// What to do after a failed delivery.
    enum AfterFailure: Equatable {
        /// Post it again after this many milliseconds (``retryDue(callId:)`` then).
        case retry(afterMilliseconds: Int64)
        /// Retried for the whole window: it is gone from the queue.
        case givenUp
    }

    private var lines: [String: Deque<Event>] = [:]
    /// Calls whose first event may be posted now.
    private var ready = Deque<String>()
    private(set) var count = 0
    private(set) var bytes = 0
    let maxCount: Int
    let maxBytes: Int
    /// How long a failing event is retried (`hooks.events_retry`), in milliseconds.
    let retryWindow: Int64

    init(maxCount: Int, maxBytes: Int, retryWindow: Int64) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
        self.retryWindow = retryWindow
    }

    /// Queues an event of `callId`; `false` (and nothing queued) when there is no room.
    mutating func enqueue(callId: String, body: [UInt8]) -> Bool {
        guard count < maxCount, bytes + body.count <= maxBytes else { return false }
        count += 1
        bytes += body.count
        if lines[callId] == nil { ready.append(callId) }
        lines[callId, default: []].append(Event(callId: callId, body: body))
        return true
    }

    /// The next event to post; it stays first in its call's line until ``delivered(callId:)`` or a
    /// ``failed(callId:now:)`` that gives it up.
    mutating func next() -> Event? {
        guard let callId = ready.popFirst() else { return nil }
        return lines[callId]?.first
    }

    /// The first event of `callId` was taken: the next one of that call may go.
    mutating func delivered(callId: String) {
        removeFirst(of: callId)
    }

    /// The first event of `callId` failed at `now`: retry it later, or give it up after the window.
    mutating func failed(callId: String, now: Int64) -> AfterFailure {
        guard var event = lines[callId]?.first else { return .givenUp }
        event.failures += 1
        let firstFailedAt = event.firstFailedAt ?? now
        event.firstFailedAt = firstFailedAt
        let delay = Self.backoff(afterFailures: event.failures)
        guard now + delay <= firstFailedAt + retryWindow else {
            removeFirst(of: callId)
            return .givenUp
        }
        lines[callId]![0] = event
        return .retry(afterMilliseconds: delay)
    }

    /// A retry's backoff ran out: the call's first event may be posted again.
    mutating func retryDue(callId: String) {
        if lines[callId] != nil { ready.append(callId) }
    }

    /// Milliseconds to wait after the `failures`-th failure in a row: 1 s, doubling, at most 30 s.
    static func backoff(afterFailures failures: Int) -> Int64 {
        min(30_000, 1000 << Int64(min(max(failures, 1) - 1, 5)))
    }

    private mutating func removeFirst(of callId: String) {
        guard let event = lines[callId]?.popFirst() else { return }
        count -= 1
        bytes -= event.body.count
        if lines[callId]!.isEmpty {
            lines[callId] = nil
        } else {
            ready.append(callId)
        }
    }
}
