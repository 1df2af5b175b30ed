import DequeModule
import SwitchboardBasics

/// Elements in order within limits of bytes, count and age: what ``OutboxStateMachine`` keeps per destination,
/// for a retry (parcels that found no receiver) or for a replay (those that did).
///
/// Making room gives up the oldest elements first (the front), as few as needed; an element that would
/// not fit even into an empty queue is refused and nothing is given up for it. The limits may be shared
/// with elements kept elsewhere (the parcels in flight): those are passed in as `reserved`. Time is
/// passed in too (monotonic nanoseconds), so the queue is a plain value with no clock of its own.
struct BoundedParcelQueue<Element> {
    typealias Limits = ParcelQueueLimits
    typealias Usage = ParcelQueueUsage

    fileprivate struct Entry {
        var element: Element
        var bytes: Int
        var since: UInt64
    }

    let limits: Limits
    private var entries = Deque<Entry>()
    /// What the elements count in bytes.
    private(set) var bytes = 0

    init(limits: Limits) {
        self.limits = limits
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var usage: Usage { Usage(bytes: bytes, count: entries.count) }
    /// The elements, oldest first.
    var elements: [Element] { entries.map(\.element) }
    /// The earliest time an element was added with, `nil` when empty.
    var earliest: UInt64? { entries.lazy.map(\.since).min() }

    /// Whether an element of `bytes` fits beside `reserved` once this queue is empty.
    func canFit(bytes: Int, reserved: Usage = Usage()) -> Bool {
        reserved.bytes + bytes <= limits.maxBytes && reserved.count + 1 <= limits.maxCount
    }

    /// Whether an element of `bytes` fits beside the elements and `reserved`, giving up none.
    func fits(bytes: Int, reserved: Usage = Usage()) -> Bool {
        reserved.bytes + self.bytes + bytes <= limits.maxBytes && reserved.count + count + 1 <= limits.maxCount
    }

    /// Gives up the oldest elements, as few as needed, so that one of `bytes` more fits beside the rest
    /// and `reserved`; returns them, oldest first. `nil` when it cannot fit even with the queue empty
    /// (then nothing is given up).
    mutating func makeRoom(forBytes bytes: Int, reserved: Usage = Usage()) -> [Element]? {
        guard canFit(bytes: bytes, reserved: reserved) else { return nil }
        var givenUp: [Element] = []
        while !fits(bytes: bytes, reserved: reserved), let oldest = entries.popFirst() {
            self.bytes -= oldest.bytes
            givenUp.append(oldest.element)
        }
        if entries.isEmpty { entries = Deque() }  // a burst's storage goes back
        return givenUp
    }

    /// Adds `element`, counting `bytes`, added at `since`: at the end, or with `isBefore`, behind the
    /// last element that goes before it. Makes room first (``makeRoom(forBytes:reserved:)``) and
    /// returns what was given up for it; `nil` when it cannot fit at all (it was not added).
    mutating func add(
        _ element: Element,
        bytes: Int,
        since: UInt64,
        reserved: Usage = Usage(),
        after isBefore: ((Element) -> Bool)? = nil
    ) -> [Element]? {
        guard let givenUp = makeRoom(forBytes: bytes, reserved: reserved) else { return nil }
        let entry = Entry(element: element, bytes: bytes, since: since)
        if let isBefore, let last = entries.lastIndex(where: { isBefore($0.element) }) {
            entries.insert(entry, at: entries.index(after: last))
        } else if isBefore != nil {
            entries.prepend(entry)
        } else {
            entries.append(entry)
        }
        self.bytes += bytes
        return givenUp
    }

    /// Adds `element` at the end, as ``add(_:bytes:since:reserved:after:)`` does, for a caller that
    /// has no use for what gives way: the oldest elements are dropped, not returned (and nothing is
    /// allocated for them). When it cannot fit at all, it is not added.
    mutating func append(_ element: Element, bytes: Int, since: UInt64) {
        guard canFit(bytes: bytes) else { return }
        while !fits(bytes: bytes), let oldest = entries.popFirst() {
            self.bytes -= oldest.bytes
        }
        entries.append(Entry(element: element, bytes: bytes, since: since))
        self.bytes += bytes
    }

    /// Removes the elements kept for ``Limits/maxAge`` or longer at `now`; returns them, in order.
    mutating func removeExpired(now: UInt64) -> [Element] {
        let maxAge = limits.maxAgeNanoseconds
        func expired(_ entry: Entry) -> Bool { now >= entry.since && now - entry.since >= maxAge }
        guard entries.contains(where: expired) else { return [] }
        var kept = Deque<Entry>()
        var removed: [Element] = []
        for entry in entries {
            if expired(entry) {
                removed.append(entry.element)
                bytes -= entry.bytes
            } else {
                kept.append(entry)
            }
        }
        entries = kept
        return removed
    }

    /// Removes every element; returns them, in order.
    mutating func removeAll() -> [Element] {
        defer {
            entries = Deque()
            bytes = 0
        }
        return elements
    }
}

extension BoundedParcelQueue: Sendable where Element: Sendable {}
extension BoundedParcelQueue.Entry: Sendable where Element: Sendable {}

/// How much a ``BoundedParcelQueue`` may hold.
struct ParcelQueueLimits: Sendable, Equatable {
    /// Bytes, as the caller counts them (an element's bytes and the cost of keeping it).
    var maxBytes: Int
    /// Elements.
    var maxCount: Int
    /// How long an element is kept, from the time it was added with.
    var maxAge: Duration

    var maxAgeNanoseconds: UInt64 {
        UInt64(max(0, maxAge.wholeNanoseconds))
    }
}

/// Bytes and elements counted against a ``ParcelQueueLimits`` (a queue's, or kept elsewhere beside it).
struct ParcelQueueUsage: Sendable, Equatable {
    var bytes = 0
    var count = 0

    mutating func add(_ bytes: Int) {
        self.bytes += bytes
        count += 1
    }

    mutating func remove(_ bytes: Int) {
        self.bytes -= bytes
        count -= 1
    }
}
