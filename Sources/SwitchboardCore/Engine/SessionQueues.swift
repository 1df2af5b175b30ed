import DequeModule
import SwitchboardProto

/// Keeps each session's messages in order while one of them waits (for the call store or presence).
///
/// A session with no entry is idle: its next message is handled at once, on the caller's thread. A
/// session that must wait is *held* (it gets an entry); what it sends meanwhile queues there, and the
/// entry goes once the queue has been worked through. Idle sessions cost nothing here.
///
/// What waits is bounded per session in messages and in bytes (PROTOCOL.md §9): one message of any size
/// always fits into an empty queue.
struct SessionQueues {
    private struct Queue {
        var messages = Deque<ChatMessage>()
        var bytes = 0
    }

    /// What to do with a message a session sent.
    enum Admission: Equatable {
        /// The session is idle: handle it now.
        case handleNow
        /// It waits behind an earlier message.
        case queued
        /// Too much waits already: refuse it.
        case full
    }

    private var queues: [UInt64: Queue] = [:]
    let capacity: Int
    let capacityBytes: Int

    /// Queues of at most `capacity` messages and `capacityBytes` bytes (``cost(of:)``) each.
    init(capacity: Int, capacityBytes: Int) {
        self.capacity = capacity
        self.capacityBytes = capacityBytes
    }

    /// A message session `id` sent.
    mutating func admit(_ message: ChatMessage, of id: UInt64) -> Admission {
        guard var queue = queues[id] else { return .handleNow }
        let cost = Self.cost(of: message)
        guard queue.messages.count < capacity, queue.messages.isEmpty || queue.bytes + cost <= capacityBytes else {
            return .full
        }
        queue.messages.append(message)
        queue.bytes += cost
        queues[id] = queue
        return .queued
    }

    /// Holds session `id`: what it sends from now on waits until ``next(of:)`` has worked through it.
    mutating func hold(_ id: UInt64) {
        if queues[id] == nil { queues[id] = Queue() }
    }

    /// The next message waiting for session `id`, or `nil` after marking it idle.
    mutating func next(of id: UInt64) -> ChatMessage? {
        guard var queue = queues[id] else { return nil }
        guard let message = queue.messages.popFirst() else {
            queues[id] = nil
            return nil
        }
        queue.bytes -= Self.cost(of: message)
        queues[id] = queue
        return message
    }

    /// Forgets session `id` and what waited for it (it closed, or was replaced).
    mutating func remove(_ id: UInt64) {
        queues[id] = nil
    }

    /// Whether session `id` is held.
    func isHeld(_ id: UInt64) -> Bool { queues[id] != nil }

    /// What a waiting message counts: its variable-length fields and a fixed overhead.
    static func cost(of message: ChatMessage) -> Int {
        256 + message.content.utf8.count + message.file.count + message.url.utf8.count + message.avatar.utf8.count
            + message.fromUsername.utf8.count + message.from.utf8.count + message.to.utf8.count
            + message.type.utf8.count + message.fileSuffix.utf8.count
    }
}
