import NIOCore
import Testing

@testable import SwitchboardRedis

/// The outbox's rules with no Redis, no event loop and no clock: each event is a method call with the
/// time given, and what comes back is compared as text (``OutboxHarness/describe(_:)``).
@Suite struct OutboxStateMachineTests {
    typealias Machine = OutboxHarness.Machine

    /// What one parcel of `parcel("Pn")` counts against the limits.
    private let cost = parcel("P0").readableBytes + Machine.Parcel.overhead

    private func harness(
        publishWindow: Duration = .zero,
        _ configure: (inout ClusterBufferLimits) -> Void = { _ in }
    ) -> OutboxHarness {
        var limits = ClusterBufferLimits.standard
        configure(&limits)
        return OutboxHarness(
            machine: Machine(limits: limits, retryInterval: .milliseconds(100), publishWindow: publishWindow)
        )
    }

    // MARK: Publishing

    @Test func theParcelsOfOneTickGoOutTogetherNumberedPerDestination() {
        var machine = harness().machine
        let describe = OutboxHarness.describe
        #expect(describe(machine.publish(parcel("P0"), to: "n2", in: 1)) == ["flush tick 1"])
        #expect(machine.publish(parcel("P1"), to: "n2", in: 1).isEmpty, "one flush per tick")
        #expect(machine.publish(parcel("Q0"), to: "n3", in: 1).isEmpty)
        #expect(
            describe(machine.publish(parcel("P2"), to: "n2", in: 2)) == ["flush tick 2"],
            "another loop's tick"
        )
        #expect(machine.usage(of: "n2").inFlight == .init(), "nothing is numbered before the tick ends")

        // One PUBLISH per destination (a bundle for n2), each numbered in publish order from 0.
        #expect(describe(machine.flush(1, now: 0)) == ["publish n2 P0#0+P1#1, n3 Q0#0"])
        #expect(machine.flush(1, now: 0).isEmpty, "a tick is flushed once")
        #expect(describe(machine.publish(parcel("P3"), to: "n2", in: 1)) == ["flush tick 1"], "a new batch")
        #expect(machine.flush(2, now: 0).isEmpty, "n2's PUBLISH is in flight: P2 gathers, numbered")
        #expect(machine.usage(of: "n2").inFlight == .init(bytes: 3 * cost, count: 3))
        #expect(machine.usage(of: "n3").inFlight == .init(bytes: cost, count: 1))
    }

    /// A parcel held by the outbox alone is numbered in its own bytes at the end of its tick: what is
    /// published is the buffer that was given, not a copy.
    @Test func aParcelIsNumberedInPlace() throws {
        var machine = harness().machine
        _ = machine.publish(parcel("P0"), to: "n2", in: 1)
        guard case .publish(let first) = try #require(machine.flush(1, now: 0).first) else {
            Issue.record("no publish")
            return
        }
        _ = machine.published(first[0].parcels, to: "n2", receivers: 1, now: 0)
        var payload = parcel("P1")
        let address = payload.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) }
        _ = machine.publish(consume payload, to: "n2", in: 1)
        guard case .publish(let publishes) = try #require(machine.flush(1, now: 0).first) else {
            Issue.record("no publish")
            return
        }
        let published = try #require(publishes.first?.payload)
        #expect(published.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == address, "the same bytes")
        #expect(try Envelope(decoding: published).sequence == 1)
    }

    @Test func aPublishRedisDidNotTakeFailsItsParcelsAsUnreachable() {
        var outbox = harness()
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        let publish = outbox.sent[0]
        #expect(
            outbox.apply { $0.publishFailed(publish.parcels, to: "n2", error: "down", now: 0) } == [
                #"fail unreachable("down") P0"#
            ]
        )
        #expect(outbox.machine.usage(of: "n2") == (.init(), .init(), .init()))
    }

    /// A parcel is its bytes and its destination: what fails says where it was going, for the driver's
    /// one handler to report.
    @Test func aFailedParcelNamesItsDestination() throws {
        var outbox = harness()
        #expect(outbox.send("Q0", to: "n3") == ["publish n3 Q0#0"])
        let actions = outbox.machine.publishFailed(outbox.sent[0].parcels, to: "n3", error: "down", now: 0)
        guard case .fail(let parcels, _) = try #require(actions.first) else {
            Issue.record("no failure")
            return
        }
        #expect(parcels.map(\.node) == ["n3"])
        #expect(parcels.map { parcelText($0.payload) } == ["Q0"])
    }

    /// While a destination's `PUBLISH` is in flight, what is published for it gathers, numbered, and goes
    /// in one `PUBLISH` with the answer (no timer: the round trip is the wait).
    @Test func whatIsPublishedWhileAPublishIsInFlightGoesWithItsAnswer() {
        var outbox = harness()
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        #expect(outbox.send("P1", "P2") == [], "P0 is in flight: P1 and P2 gather")
        #expect(outbox.send("Q0", to: "n3") == ["publish n3 Q0#0"], "another destination does not wait")
        #expect(outbox.machine.usage(of: "n2").inFlight.count == 3, "gathered parcels count in flight")
        #expect(outbox.answer(0, receivers: 1) == ["prune n2 at 10000 ms", "publish n2 P1#1+P2#2"])
        #expect(outbox.send("P3") == [], "the bundle is in flight")
        #expect(outbox.answer(2, receivers: 1) == ["publish n2 P3#3"])
        #expect(outbox.answer(3, receivers: 1) == [])
        #expect(outbox.send("P4") == ["publish n2 P4#4"], "nothing in flight: at the end of its tick")
    }

    /// What gathers is bounded: past 64 KiB it goes at once, in a `PUBLISH` of its own.
    @Test func whatGathersPast64KiBGoesAtOnce() {
        var outbox = harness()
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        let half = String(repeating: "x", count: Machine.maxGatheredBytes / 2)
        #expect(outbox.send(half) == [])
        #expect(outbox.send(half).count == 1, "past 64 KiB")
        #expect(outbox.sent.last?.parcels.map(\.sequence) == [1, 2])
        #expect(outbox.answer(0, receivers: 1) == ["prune n2 at 10000 ms"], "nothing left to go with the answer")
    }

    /// A `PUBLISH` nobody received holds what gathered behind it for the retry, in number order.
    @Test func whatGatheredBehindAMissIsHeldForTheRetry() {
        var outbox = harness()
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        #expect(outbox.send("P1") == [])
        #expect(outbox.answer(0, receivers: 0) == ["retry n2 at 100 ms"])
        #expect(outbox.machine.usage(of: "n2").held.count == 2)
        #expect(outbox.retry(at: 100) == ["check n2", "publish n2 P0#0, n2 P1#1", "retry n2 at 200 ms"])
    }

    // MARK: The publish window

    /// With a publish window, what comes for a destination less than the window after its last
    /// `PUBLISH` gathers and goes at the window's end, in one `PUBLISH`; one window end is scheduled
    /// however much gathers, and the first parcel after a quiet window goes at once.
    @Test func withinThePublishWindowParcelsGatherAndGoAtItsEnd() {
        var outbox = harness(publishWindow: .milliseconds(5))
        #expect(outbox.send("P0") == ["publish n2 P0#0"], "the first goes at once")
        #expect(outbox.answer(0, receivers: 1) == ["prune n2 at 10000 ms"])
        outbox.now = OutboxHarness.ms(1)
        #expect(outbox.send("P1") == ["window n2 ends at 5 ms"])
        #expect(outbox.send("P2", "P3") == [], "one window end, however much gathers")
        #expect(outbox.send("Q0", to: "n3") == ["publish n3 Q0#0"], "another destination has its own window")
        #expect(outbox.machine.usage(of: "n2").inFlight.count == 3, "gathered parcels count in flight")
        #expect(outbox.windowEnd(at: 5) == ["publish n2 P1#1+P2#2+P3#3"])
        #expect(outbox.windowEnd(at: 5) == [], "nothing gathered")
        #expect(outbox.answer(2, receivers: 1) == [])
        outbox.now = OutboxHarness.ms(20)
        #expect(outbox.send("P4") == ["publish n2 P4#4"], "after a quiet window, at once")
    }

    /// The window and the answer both hold what gathered: it goes with whichever comes later.
    @Test func whatGathersGoesWithTheAnswerOrAtTheWindowsEndWhicheverIsLater() {
        var outbox = harness(publishWindow: .milliseconds(5))
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        outbox.now = OutboxHarness.ms(1)
        #expect(outbox.send("P1") == [], "P0 is in flight: no timer, the answer is awaited")
        outbox.now = OutboxHarness.ms(2)
        #expect(outbox.answer(0, receivers: 1) == ["prune n2 at 10002 ms", "window n2 ends at 5 ms"])
        #expect(outbox.windowEnd(at: 5) == ["publish n2 P1#1"])
        outbox.now = OutboxHarness.ms(6)
        #expect(outbox.send("P2") == [], "P1 is in flight")
        outbox.now = OutboxHarness.ms(7)
        #expect(outbox.answer(1, receivers: 1) == ["window n2 ends at 10 ms"], "P1 went at 5 ms")
        #expect(outbox.windowEnd(at: 10) == ["publish n2 P2#2"])
        outbox.now = OutboxHarness.ms(11)
        #expect(outbox.send("P3") == [], "P2 is in flight")
        outbox.now = OutboxHarness.ms(16)
        #expect(outbox.answer(2, receivers: 1) == ["publish n2 P3#3"], "the window has ended: at once")
    }

    /// What gathered in the window behind a `PUBLISH` nobody received is held for the retry, in order.
    @Test func whatGatheredInTheWindowBehindAMissIsHeldForTheRetry() {
        var outbox = harness(publishWindow: .milliseconds(5))
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        outbox.now = OutboxHarness.ms(1)
        #expect(outbox.send("P1") == [])
        #expect(outbox.answer(0, receivers: 0) == ["retry n2 at 101 ms", "window n2 ends at 5 ms"])
        #expect(outbox.windowEnd(at: 5) == [])
        #expect(outbox.machine.usage(of: "n2").held.count == 2)
        #expect(outbox.retry(at: 101) == ["check n2", "publish n2 P0#0, n2 P1#1", "retry n2 at 201 ms"])
    }

    /// The window does not hold more than a `PUBLISH` can take: past 64 KiB what gathered goes at once.
    @Test func whatGathersInTheWindowPast64KiBGoesAtOnce() {
        var outbox = harness(publishWindow: .milliseconds(5))
        #expect(outbox.send("P0") == ["publish n2 P0#0"])
        #expect(outbox.answer(0, receivers: 1).count == 1)
        let half = String(repeating: "x", count: Machine.maxGatheredBytes / 2)
        #expect(outbox.send(half) == ["window n2 ends at 5 ms"])
        #expect(outbox.send(half).count == 1, "past 64 KiB")
        #expect(outbox.sent.last?.parcels.map(\.sequence) == [1, 2])
        #expect(outbox.windowEnd(at: 5) == [], "nothing left for the window's end")
    }

    // MARK: Held for a retry

    /// P0 is in flight and P1 gathers behind it; P0 finds no receiver and is held, P1 with it; P2 is
    /// published (and held behind them). The retry sends P0, P1, P2: the order they were published in.
    @Test func aRetryPublishesTheHeldParcelsAgainInPublishOrder() {
        var outbox = harness()
        #expect(outbox.send("P0", "P1") == ["publish n2 P0#0"])
        #expect(outbox.answer(0, receivers: 0) == ["retry n2 at 100 ms"], "P1 is held with P0, not sent")
        #expect(outbox.send("P2") == [], "held behind P0, not sent")
        #expect(outbox.machine.usage(of: "n2").held == .init(bytes: 3 * cost, count: 3))

        #expect(outbox.apply { $0.retryTimerFired(for: "n2") } == ["check n2"], "first, whether n2 is alive")
        #expect(
            outbox.apply { $0.livenessChecked("n2", .alive, now: OutboxHarness.ms(100)) }
                == ["publish n2 P0#0, n2 P1#1, n2 P2#2"]
        )
        #expect(outbox.machine.usage(of: "n2").inFlight == .init(bytes: 3 * cost, count: 3))
        #expect(outbox.machine.usage(of: "n2").held == .init())
        for index in 1..<4 { _ = outbox.answer(index, receivers: 1) }
        #expect(outbox.send("P3") == ["publish n2 P3#3"], "with nothing held, a new parcel goes out at once")
    }

    @Test func eachHeldParcelFailsOnceHeldForTheRetryAgeCountedFromWhenItWasFirstHeld() {
        var outbox = harness { $0.retryMaxAge = .seconds(2) }
        _ = outbox.send("P0")
        #expect(outbox.answer(0, receivers: 0) == ["retry n2 at 100 ms"])
        for time in stride(from: 100, to: 2000, by: 100) {
            if time == 1000 {
                outbox.now = OutboxHarness.ms(1000)
                #expect(outbox.send("P1") == [], "held behind P0's retries, from 1 s")
            }
            let again = time < 1000 ? "n2 P0#0" : "n2 P0#0, n2 P1#1"
            #expect(outbox.retry(at: time) == ["check n2", "publish \(again)", "retry n2 at \(time + 100) ms"])
        }
        // At 2 s P0 was held for 2 s (P1 for 1 s): P0 fails, P1 goes on.
        #expect(outbox.retry(at: 2000) == ["check n2", "publish n2 P1#1", "fail noReceiver P0", "retry n2 at 2100 ms"])
        for time in stride(from: 2100, to: 3000, by: 100) {
            #expect(outbox.retry(at: time) == ["check n2", "publish n2 P1#1", "retry n2 at \(time + 100) ms"])
        }
        #expect(outbox.retry(at: 3000) == ["check n2", "fail noReceiver P1"], "and no retry is left")
        #expect(outbox.machine.usage(of: "n2") == (.init(), .init(), .init()))
    }

    @Test func everyParcelHeldForANodeThatIsGoneFailsAtOnce() {
        var outbox = harness { $0.retryMaxAge = .seconds(10) }
        _ = outbox.send("P0", "P1")
        #expect(outbox.answer(0, receivers: 0) == ["retry n2 at 100 ms"])
        #expect(outbox.retry(at: 100, .gone) == ["check n2", "fail noReceiver P0 P1"], "long before the retry age")
        #expect(outbox.machine.usage(of: "n2") == (.init(), .init(), .init()))
        #expect(outbox.send("P2") == ["publish n2 P2#2"], "nothing is held any more")
    }

    @Test func aFailedLivenessCheckIsNoVerdict() {
        var outbox = harness()
        _ = outbox.send("P0")
        _ = outbox.answer(0, receivers: 0)
        #expect(outbox.retry(at: 100, .unknown) == ["check n2", "publish n2 P0#0", "retry n2 at 200 ms"])
    }

    @Test func heldParcelsBeyondTheCountGiveWayOldestFirst() {
        var outbox = harness { $0.retryMaxMessages = 3 }
        _ = outbox.send("P0")
        _ = outbox.answer(0, receivers: 0)
        #expect(outbox.send("P1", "P2") == [])
        #expect(outbox.send("P3") == ["fail bufferFull P0"], "the oldest gives way")
        #expect(outbox.send("P4") == ["fail bufferFull P1"])
        #expect(outbox.machine.usage(of: "n2").held.count == 3)
        // What is left goes out with the numbers it was given.
        #expect(outbox.retry(at: 100) == ["check n2", "publish n2 P2#2, n2 P3#3, n2 P4#4", "retry n2 at 200 ms"])
    }

    @Test func heldParcelsBeyondTheBytesGiveWayOldestFirstAsFewAsNeeded() {
        var outbox = harness { $0.retryMaxBytes = 3 * cost }
        _ = outbox.send("P0")
        _ = outbox.answer(0, receivers: 0)
        #expect(outbox.send("P1", "P2") == [])
        #expect(outbox.machine.usage(of: "n2").held == .init(bytes: 3 * cost, count: 3))
        // Between one and two parcels' worth: two must go for it.
        let big = "B" + String(repeating: "x", count: cost / 2)
        #expect(outbox.send(big) == ["fail bufferFull P0 P1"])
        #expect(outbox.machine.usage(of: "n2").held.count == 2)
        #expect(outbox.machine.usage(of: "n2").held.bytes <= 3 * cost)
    }

    @Test func parcelsInFlightCountTooAndANewOneThatCannotFitFailsUnnumbered() {
        var outbox = harness { $0.retryMaxMessages = 2 }
        #expect(outbox.send("P0", "P1") == ["publish n2 P0#0"], "P1 gathers behind P0, counted in flight")
        #expect(outbox.send("P2") == ["fail bufferFull P2"], "no room beside two in flight")
        #expect(outbox.answer(0, receivers: 1) == ["prune n2 at 10000 ms", "publish n2 P1#1"])
        _ = outbox.answer(1, receivers: 1)
        #expect(outbox.send("P3") == ["publish n2 P3#2"], "P2 took no number: the receiver sees no gap")
    }

    @Test func aParcelTooBigForTheLimitFailsAndNothingGivesWayForIt() {
        var outbox = harness { $0.retryMaxBytes = 2 * cost }
        _ = outbox.send("P0")
        _ = outbox.answer(0, receivers: 0)
        #expect(
            outbox.send("a parcel longer than the limit" + String(repeating: "x", count: 2 * cost))
                == ["fail bufferFull a parcel longer than the limit" + String(repeating: "x", count: 2 * cost)]
        )
        #expect(outbox.machine.usage(of: "n2").held.count == 1, "P0 is still held")
    }

    // MARK: Kept for a replay

    @Test func aReceivedParcelIsKeptAndTheAgeCheckIsScheduledOncePerRun() {
        var outbox = harness { $0.replayMaxAge = .seconds(10) }
        _ = outbox.send("P0")
        outbox.now = OutboxHarness.ms(5)
        #expect(outbox.answer(0, receivers: 1) == ["prune n2 at 10005 ms"])
        _ = outbox.send("P1")
        outbox.now = OutboxHarness.ms(6)
        #expect(outbox.answer(1, receivers: 1) == [], "a check is scheduled already")
        #expect(outbox.machine.usage(of: "n2").kept == .init(bytes: 2 * cost, count: 2))
        #expect(outbox.machine.usage(of: "n2").inFlight == .init())

        #expect(outbox.prune(at: 10004) == ["prune n2 at 10005 ms"], "nothing is past its age yet")
        #expect(outbox.prune(at: 10005) == ["prune n2 at 10006 ms"], "P0 goes; the check follows P1")
        #expect(outbox.machine.usage(of: "n2").kept == .init(bytes: cost, count: 1))
        #expect(outbox.prune(at: 10006) == [], "nothing is left to check")
        #expect(outbox.machine.usage(of: "n2").kept == .init())

        _ = outbox.send("P2")
        outbox.now = OutboxHarness.ms(20_000)
        #expect(outbox.answer(2, receivers: 1) == ["prune n2 at 30000 ms"], "a new run of checks")
    }

    @Test func theReplayKeepsTheNewestWithinTheCountAndTheBytes() {
        var byCount = harness { $0.replayMaxMessages = 3 }
        var byBytes = harness { $0.replayMaxBytes = 2 * cost }
        for index in 0..<5 {
            _ = byCount.send("P\(index)")
            _ = byCount.answer(index, receivers: 1)
            _ = byBytes.send("P\(index)")
            _ = byBytes.answer(index, receivers: 1)
        }
        #expect(byCount.apply { $0.replay(to: "n2", from: 0, through: .max, now: 0) } == ["publish n2 P2#2, n2 P3#3, n2 P4#4"])
        #expect(byBytes.apply { $0.replay(to: "n2", from: 0, through: .max, now: 0) } == ["publish n2 P3#3, n2 P4#4"])
    }

    @Test func aReplayPublishesTheKeptParcelsOfTheRangeAgainWithTheirNumbers() {
        var outbox = harness()
        for index in 0..<5 {
            _ = outbox.send("P\(index)")
            _ = outbox.answer(index, receivers: 1)
        }
        #expect(outbox.apply { $0.replay(to: "n2", from: 2, through: 3, now: 0) } == ["publish n2 P2#2, n2 P3#3"])
        #expect(outbox.machine.usage(of: "n2").inFlight.count == 2, "replays count in flight")
        #expect(outbox.answer(5, receivers: 1) == [])
        #expect(outbox.answer(6, receivers: 1) == [])
        #expect(outbox.machine.usage(of: "n2").kept.count == 5, "a replayed parcel is not kept twice")
        #expect(outbox.apply { $0.replay(to: "n2", from: 3, through: 2, now: 0) } == [], "an empty range")
        #expect(outbox.apply { $0.replay(to: "n2", from: 5, through: .max, now: 0) } == [], "nothing numbered there yet")
        #expect(outbox.apply { $0.replay(to: "n3", from: 0, through: .max, now: 0) } == [], "nothing was sent to n3")
    }

    @Test func aReplayLeavesHeldParcelsToTheRetryAndSendsOnlyWhatFits() {
        var outbox = harness { $0.retryMaxMessages = 3 }
        for index in 0..<3 {
            _ = outbox.send("P\(index)")
            _ = outbox.answer(index, receivers: 1)
        }
        #expect(outbox.send("P3") == ["publish n2 P3#3"])  // in flight, unanswered: room for two more
        #expect(outbox.apply { $0.replay(to: "n2", from: 0, through: .max, now: 0) } == ["publish n2 P0#0, n2 P1#1"])
        #expect(outbox.apply { $0.replay(to: "n2", from: 0, through: .max, now: 0) } == [], "no room left")
        // The replayed P0 finds no receiver: held for a retry. P1 is received.
        #expect(outbox.answer(4, receivers: 0) == ["retry n2 at 100 ms"])
        #expect(outbox.answer(5, receivers: 1) == [])
        #expect(
            outbox.apply { $0.replay(to: "n2", from: 0, through: 1, now: 0) } == ["publish n2 P1#1"],
            "P0 is left to the retry"
        )
    }

    @Test func timersOfANodeNeverSentToDoNothing() {
        var outbox = harness()
        #expect(outbox.apply { $0.livenessChecked("n9", .alive, now: 0) } == [])
        #expect(outbox.apply { $0.pruneTimerFired(for: "n9", now: 0) } == [])
    }
}

/// An ``OutboxStateMachine`` and what it asked to publish, so that a test can answer each `PUBLISH`
/// by its index, at a time the test sets.
struct OutboxHarness {
    /// Ticks are numbers; parcels are told apart by their text (``parcelText(_:)``).
    typealias Machine = OutboxStateMachine<Int>

    var machine: Machine
    /// Every `PUBLISH` asked for, in order.
    var sent: [Machine.Publish] = []
    /// The time of the next events, monotonic ns.
    var now: UInt64 = 0
    private var tick = 0

    init(machine: Machine) {
        self.machine = machine
    }

    static func ms(_ milliseconds: Int) -> UInt64 { UInt64(milliseconds) * 1_000_000 }

    /// Gives the machine an event; returns its actions as text, keeping the `PUBLISH`es.
    mutating func apply(_ event: (inout Machine) -> [Machine.Action]) -> [String] {
        let actions = event(&machine)
        for case .publish(let publishes) in actions { sent += publishes }
        return Self.describe(actions)
    }

    /// Publishes each text to `node` in a tick of its own, ended at once: what the ends of the ticks did.
    mutating func send(_ texts: String..., to node: String = "n2") -> [String] {
        var actions: [String] = []
        for text in texts {
            tick += 1
            let tick = self.tick
            let now = self.now
            #expect(apply { $0.publish(parcel(text), to: node, in: tick) } == ["flush tick \(tick)"])
            actions += apply { $0.flush(tick, now: now) }
        }
        return actions
    }

    /// Answers the `index`th `PUBLISH`: received by `receivers`.
    mutating func answer(_ index: Int, receivers: Int) -> [String] {
        let publish = sent[index]
        let now = self.now
        return apply { $0.published(publish.parcels, to: publish.node, receivers: receivers, now: now) }
    }

    /// The retry of n2 at `milliseconds`: its timer, the liveness check, and every `PUBLISH` it asks for
    /// answered with nobody.
    mutating func retry(at milliseconds: Int, _ liveness: Machine.Liveness = .alive) -> [String] {
        now = Self.ms(milliseconds)
        let now = self.now
        var actions = apply { $0.retryTimerFired(for: "n2") }
        let first = sent.count
        actions += apply { $0.livenessChecked("n2", liveness, now: now) }
        for index in first..<sent.count { actions += answer(index, receivers: 0) }
        return actions
    }

    /// The end of n2's publish window at `milliseconds`.
    mutating func windowEnd(at milliseconds: Int) -> [String] {
        now = Self.ms(milliseconds)
        let now = self.now
        return apply { $0.windowEnded(for: "n2", now: now) }
    }

    /// The replay-age check of n2 at `milliseconds`.
    mutating func prune(at milliseconds: Int) -> [String] {
        now = Self.ms(milliseconds)
        let now = self.now
        return apply { $0.pruneTimerFired(for: "n2", now: now) }
    }

    /// Actions as text: `publish n2 P0#0+P1#1, n3 Q0#0` (each `PUBLISH`: its node and the envelopes its
    /// payload carries, as text#number), `fail bufferFull P0 P1`, `retry n2 at 100 ms`, ...
    static func describe(_ actions: [Machine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .publish(let publishes):
                "publish " + publishes.map { "\($0.node) " + envelopes(in: $0).joined(separator: "+") }.joined(separator: ", ")
            case .fail(let parcels, let failure):
                "fail \(failure) " + parcels.map { parcelText($0.payload) }.joined(separator: " ")
            case .flushAtEndOfTick(let tick):
                "flush tick \(tick)"
            case .scheduleRetry(let node, let deadline):
                "retry \(node) at \(deadline / 1_000_000) ms"
            case .checkLiveness(let node):
                "check \(node)"
            case .schedulePrune(let node, let deadline):
                "prune \(node) at \(deadline / 1_000_000) ms"
            case .scheduleWindowEnd(let node, let deadline):
                "window \(node) ends at \(deadline / 1_000_000) ms"
            }
        }
    }

    /// The envelopes a `PUBLISH` carries, as `text#number`; they must be its parcels, in order.
    private static func envelopes(in publish: Machine.Publish) -> [String] {
        let decoded = (EnvelopeBundle.split(publish.payload) ?? []).compactMap { try? Envelope(decoding: $0) }
        #expect(
            decoded.map { String(buffer: $0.message) } == publish.parcels.map { parcelText($0.payload) },
            "the payload carries its parcels"
        )
        #expect(decoded.map(\.sequence) == publish.parcels.map(\.sequence), "numbered in the payload as in the parcels")
        return decoded.map { "\(String(buffer: $0.message))#\($0.sequence)" }
    }
}
