import SwitchboardCore
import Testing

/// Token buckets, keyed tables of them, and per-user budgets (PROTOCOL.md §9), on a fake monotonic clock.
@Suite struct LimitsTests {
    static let second: UInt64 = 1_000_000_000

    @Test func burstPassesBackToBackThenTheSustainedRateApplies() {
        var bucket = TokenBucket(rate: 50, per: .seconds(1), burst: 400, now: 0)
        #expect((0..<400).allSatisfy { _ in bucket.take(now: 0) }, "the whole burst passes at one instant")
        var taken = bucket.take(now: 0)
        #expect(!taken)
        // 50 per second afterwards: 10 tokens in 200 ms, not 11.
        let later = Self.second / 5
        #expect((0..<10).allSatisfy { _ in bucket.take(now: later) })
        taken = bucket.take(now: later)
        #expect(!taken)
        #expect(!bucket.isFull(now: later + 7 * Self.second))
        #expect(bucket.isFull(now: later + 8 * Self.second), "400 tokens refill in 8 s at 50/s")
    }

    @Test func capacityPerPeriodIsABurstOfTheSameSize() {
        var bucket = TokenBucket(capacity: 10, per: .seconds(60), now: 0)
        #expect((0..<10).allSatisfy { _ in bucket.take(now: 0) })
        let empty = bucket.take(now: 0)
        #expect(!empty)
        let refilled = bucket.take(now: 6 * Self.second)
        #expect(refilled, "one token every 6 s")
    }

    @Test func keyedBucketsAreIndependentAndForgottenWhenFull() {
        let buckets = KeyedTokenBuckets<String>(rate: 2, per: .seconds(1), burst: 2)
        #expect(buckets.take("a", now: 0) && buckets.take("a", now: 0))
        #expect(!buckets.take("a", now: 0))
        #expect(buckets.take("b", now: 0), "another key has its own bucket")
        #expect(!buckets.take("a", now: Self.second / 4), "a refills at its rate, wherever it comes from")
        #expect(buckets.take("a", now: Self.second / 2))
    }

    @Test func keyedTableStaysBoundedUnderAFloodOfKeys() {
        let buckets = KeyedTokenBuckets<Int>(rate: 1, per: .seconds(1), burst: 1, maxKeys: 2_000)
        // 100,000 distinct keys, 1,000 per second: only about one second's worth stays remembered.
        for key in 0..<100_000 {
            _ = buckets.take(key, now: UInt64(key) * Self.second / 1_000)
        }
        #expect(buckets.count <= 2_000)
        // A flood of keys within one instant fills the table: new keys are refused, known ones still served.
        let flood = KeyedTokenBuckets<Int>(rate: 1, per: .seconds(1), burst: 2, maxKeys: 100)
        for key in 0..<100 { #expect(flood.take(key, now: 0)) }
        #expect(!flood.take(1_000, now: 0), "the table is full of active keys")
        #expect(flood.take(5, now: 0), "a known key still has its second token")
        #expect(flood.count == 100)
    }

    @Test func userBudgetSurvivesReconnectsAndPacesNotices() {
        let budgets = UserBudgets(messagesPerSecond: 1, burst: 3)
        let first = budgets.budget(of: "alice", now: 0)
        #expect((0..<3).map { _ in first.take(now: 0) } == [.allowed, .allowed, .allowed])
        // A new connection of the same user gets the same, empty budget.
        let second = budgets.budget(of: "alice", now: 0)
        #expect(second === first)
        #expect(second.take(now: 0) == .refused(notify: true))
        #expect(second.take(now: Self.second / 2) == .refused(notify: false), "one notice a second at most")
        #expect(second.take(now: Self.second) == .allowed)
        #expect(second.take(now: Self.second + Self.second / 10) == .refused(notify: true))
        #expect(budgets.budget(of: "bob", now: 0).take(now: 0) == .allowed, "budgets are per user")
    }

    @Test func emptyBudgetPausesReadingUntilAQuarterSecondHasRefilled() {
        let budget = UserBudgets(messagesPerSecond: 40, burst: 2).budget(of: "alice", now: 0)
        #expect(budget.readPause(now: 0) == nil, "a budget with tokens reads on")
        _ = budget.take(now: 0)
        #expect(budget.readPause(now: 0) == nil)
        _ = budget.take(now: 0)
        // Empty: reading resumes once a quarter second's rate (10 tokens) is back, capped at the burst (2).
        #expect(budget.readPause(now: 0) == Self.second / 20)
        #expect(budget.readPause(now: Self.second / 80) == Self.second / 20 - Self.second / 80)
        #expect(budget.readPause(now: Self.second / 40) == nil, "one token is back: read on")

        let slow = UserBudgets(messagesPerSecond: 1, burst: 1).budget(of: "bob", now: 0)
        _ = slow.take(now: 0)
        #expect(slow.readPause(now: 0) == Self.second, "at least one token's refill")
    }

    @Test func fullBudgetsAreSweptFromTheTable() {
        let budgets = UserBudgets(messagesPerSecond: 10, burst: 10)
        for user in 0..<5_000 {
            _ = budgets.budget(of: "u\(user)", now: UInt64(user) * Self.second).take(now: UInt64(user) * Self.second)
        }
        #expect(budgets.count < 2_100, "only budgets that have not refilled are kept (\(budgets.count))")
    }
}
