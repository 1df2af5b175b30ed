import Testing

@testable import SwitchboardRedis

@Suite struct BoundedParcelQueueTests {
    private typealias Queue = BoundedParcelQueue<String>

    private func queue(bytes: Int = 1_000, count: Int = 100, age: Duration = .seconds(10)) -> Queue {
        Queue(limits: .init(maxBytes: bytes, maxCount: count, maxAge: age))
    }

    private let second: UInt64 = 1_000_000_000

    @Test func theOldestGiveWayWhenTheBytesAreFull() {
        var queue = queue(bytes: 350)
        #expect(queue.add("a", bytes: 100, since: 0) == [])
        #expect(queue.add("b", bytes: 100, since: 0) == [])
        #expect(queue.add("c", bytes: 100, since: 0) == [])
        #expect(queue.bytes == 300)
        // 50 bytes are free: "d" (100) needs "a" to go; "e" (200) needs "b" and "c".
        #expect(queue.add("d", bytes: 100, since: 0) == ["a"])
        #expect(queue.add("e", bytes: 200, since: 0) == ["b", "c"])
        #expect(queue.elements == ["d", "e"])
        #expect(queue.bytes == 300)
    }

    @Test func theOldestGiveWayWhenTheCountIsFull() {
        var queue = queue(count: 3)
        for element in ["a", "b", "c"] { #expect(queue.add(element, bytes: 1, since: 0) == []) }
        #expect(queue.add("d", bytes: 1, since: 0) == ["a"])
        #expect(queue.elements == ["b", "c", "d"])
        #expect(queue.usage == .init(bytes: 3, count: 3))
    }

    @Test func anElementLargerThanTheWholeBudgetIsRefusedAndNothingGivesWay() {
        var queue = queue(bytes: 350)
        _ = queue.add("a", bytes: 100, since: 0)
        #expect(queue.add("huge", bytes: 351, since: 0) == nil)
        #expect(queue.elements == ["a"], "nothing was given up for an element that cannot fit")
        #expect(queue.add("exact", bytes: 350, since: 0) == ["a"])
        #expect(queue.elements == ["exact"])
    }

    /// `append` keeps the limits as `add` does, dropping what gives way instead of returning it.
    @Test func appendDropsTheOldestAndRefusesWhatCannotFit() {
        var queue = queue(bytes: 350, count: 3)
        for element in ["a", "b", "c"] { queue.append(element, bytes: 100, since: 0) }
        queue.append("d", bytes: 100, since: 0)
        #expect(queue.elements == ["b", "c", "d"], "the count was full: the oldest went")
        queue.append("e", bytes: 250, since: 0)
        #expect(queue.elements == ["d", "e"], "250 bytes more: the two oldest went")
        queue.append("huge", bytes: 351, since: 0)
        #expect(queue.elements == ["d", "e"], "refused, and nothing went for it")
        #expect(queue.usage == .init(bytes: 350, count: 2))
    }

    @Test func whatIsReservedElsewhereCountsAgainstTheSameLimits() {
        var queue = queue(bytes: 300, count: 4)
        _ = queue.add("a", bytes: 100, since: 0)
        _ = queue.add("b", bytes: 100, since: 0)
        // 150 bytes in flight: one more of 100 needs both to go (150 + 100 ≤ 300 only when empty).
        let inFlight = Queue.Usage(bytes: 150, count: 1)
        #expect(!queue.fits(bytes: 100, reserved: inFlight))
        #expect(queue.canFit(bytes: 100, reserved: inFlight))
        #expect(queue.makeRoom(forBytes: 100, reserved: inFlight) == ["a", "b"])
        #expect(queue.isEmpty && queue.bytes == 0)
        // 250 in flight: 100 more cannot fit at all; nothing changes.
        _ = queue.add("c", bytes: 10, since: 0)
        #expect(queue.makeRoom(forBytes: 100, reserved: .init(bytes: 250, count: 1)) == nil)
        #expect(queue.elements == ["c"])
        // The count is shared too: 3 in flight and 1 here leave no room for another.
        #expect(queue.makeRoom(forBytes: 1, reserved: .init(bytes: 0, count: 3)) == ["c"])
        #expect(queue.makeRoom(forBytes: 1, reserved: .init(bytes: 0, count: 4)) == nil)
    }

    @Test func anOrderedInsertGoesBehindTheLastElementBeforeIt() {
        var queue = BoundedParcelQueue<Int>(limits: .init(maxBytes: 100, maxCount: 100, maxAge: .seconds(1)))
        for number in [2, 4, 6] { _ = queue.add(number, bytes: 1, since: 0) }
        _ = queue.add(5, bytes: 1, since: 0) { $0 < 5 }
        _ = queue.add(1, bytes: 1, since: 0) { $0 < 1 }
        _ = queue.add(7, bytes: 1, since: 0) { $0 < 7 }
        #expect(queue.elements == [1, 2, 4, 5, 6, 7])
    }

    @Test func elementsExpireAfterTheMaximumAge() {
        var queue = queue(age: .milliseconds(1500))
        _ = queue.add("at 0", bytes: 10, since: 0)
        _ = queue.add("at 1", bytes: 20, since: 1 * second)
        _ = queue.add("at 2", bytes: 30, since: 2 * second)
        #expect(queue.earliest == 0)
        #expect(queue.removeExpired(now: 1_499_999_999) == [])
        #expect(queue.removeExpired(now: 1_500_000_000) == ["at 0"], "kept for 1.5 s, not longer")
        #expect(queue.earliest == 1 * second)
        #expect(queue.removeExpired(now: 3 * second) == ["at 1"])
        #expect(queue.usage == .init(bytes: 30, count: 1))
        #expect(queue.removeExpired(now: 4 * second) == ["at 2"])
        #expect(queue.isEmpty && queue.bytes == 0 && queue.earliest == nil)
    }

    @Test func ageCountsFromEachElementsOwnTimeWhateverItsPlace() {
        var queue = queue(age: .seconds(1))
        _ = queue.add("new", bytes: 1, since: 5 * second)
        _ = queue.add("old", bytes: 1, since: 1 * second) { _ in false }  // put in front, but older
        #expect(queue.elements == ["old", "new"])
        #expect(queue.removeExpired(now: 3 * second) == ["old"])
        #expect(queue.elements == ["new"])
    }

    @Test func removeAllEmptiesTheQueue() {
        var queue = queue()
        _ = queue.add("a", bytes: 5, since: 0)
        _ = queue.add("b", bytes: 5, since: 0)
        #expect(queue.removeAll() == ["a", "b"])
        #expect(queue.isEmpty && queue.bytes == 0)
        #expect(queue.add("c", bytes: 5, since: 0) == [])
    }
}
