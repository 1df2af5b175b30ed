import NIOCore
import Testing

@testable import SwitchboardRedis

/// The inbox's reordering with no event loop and no clock: each envelope is a method call with the time
/// given, and what comes back is compared as text (`deliver 1 2`, `gap 1...1`, `timer n1 at 2000 ms`,
/// `cancel n1`).
@Suite struct InboxStateMachineTests {
    private func envelope(_ sequence: UInt64, origin: String = "n1", incarnation: UInt64 = 7) -> Envelope {
        Envelope(kind: .deliver, origin: origin, user: "bob", incarnation: incarnation, sequence: sequence)
    }

    private func machine(maxWaitingBytes: Int = 1 << 20) -> InboxStateMachine {
        InboxStateMachine(gapTimeout: .seconds(2), maxWaitingBytes: maxWaitingBytes)
    }

    private static func ms(_ milliseconds: Int) -> UInt64 { UInt64(milliseconds) * 1_000_000 }

    private let origin = InboxStateMachine.Origin(node: "n1", incarnation: 7)

    /// Receives each number at `milliseconds`: the actions, as text.
    private func receive(_ numbers: UInt64..., into machine: inout InboxStateMachine, at milliseconds: Int = 0) -> [String] {
        numbers.flatMap { Self.describe(machine.receive(envelope($0), now: Self.ms(milliseconds))) }
    }

    private static func describe(_ actions: [InboxStateMachine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .deliver(let envelopes): "deliver " + envelopes.map { "\($0.sequence)" }.joined(separator: " ")
            case .reportGap(let position, let through): "gap \(position.expected)...\(through)"
            case .scheduleGapTimeout(let origin, let deadline): "timer \(origin.node) at \(deadline / 1_000_000) ms"
            case .cancelGapTimeout(let origin): "cancel \(origin.node)"
            }
        }
    }

    @Test func envelopesInOrderAreDeliveredAtOnceAndTheFirstStartsTheCount() {
        var machine = machine()
        #expect(receive(40, 41, into: &machine) == ["deliver 40", "deliver 41"])
        #expect(machine.positions == [.init(node: "n1", incarnation: 7, expected: 42)])
    }

    /// The fast path takes an envelope exactly when `receive` would only deliver it, and leaves the
    /// machine as `receive` would: two machines, one trying the fast path first, agree on every step.
    @Test func theInOrderFastPathAgreesWithReceive() {
        var plain = machine(maxWaitingBytes: 600)
        var fast = plain
        var taken = 0
        // In order, a gap, duplicates, late and early numbers, a second origin, a timeout, passed numbers.
        let steps: [(UInt64, String, Int)] = [
            (5, "n1", 0), (6, "n1", 0), (6, "n1", 0), (8, "n1", 10), (9, "n1", 10), (7, "n1", 20), (10, "n1", 20),
            (0, "n2", 20), (1, "n2", 30), (12, "n1", 40), (11, "n1", 2100), (13, "n1", 2100), (15, "n1", 2200),
            (16, "n1", 2200), (17, "n1", 2200), (18, "n1", 2200), (14, "n1", 2300), (19, "n1", 2300),
        ]
        for (number, node, milliseconds) in steps {
            let arriving = envelope(number, origin: node)
            let expected = Self.describe(plain.receive(arriving, now: Self.ms(milliseconds)))
            let actual: [String]
            if fast.receiveInOrder(arriving) {
                taken += 1
                actual = ["deliver \(number)"]
            } else {
                actual = Self.describe(fast.receive(arriving, now: Self.ms(milliseconds)))
            }
            #expect(actual == expected, "envelope \(number) from \(node) at \(milliseconds) ms")
            #expect(Set(fast.positions.map { "\($0)" }) == Set(plain.positions.map { "\($0)" }))
        }
        #expect(taken >= 5, "the common case takes the fast path")
    }

    @Test func anEnvelopeAheadOfAGapWaitsAndTheGapIsReportedOnceWithOneTimer() {
        var machine = machine()
        #expect(receive(0, into: &machine) == ["deliver 0"])
        #expect(receive(2, into: &machine) == ["timer n1 at 2000 ms", "gap 1...1"])
        #expect(receive(4, 2, into: &machine) == [], "no second report or timer; a duplicate of one waiting is dropped")
        // 1 releases 2; 4 still waits for 3: the wait (and its timer) goes on.
        #expect(receive(1, into: &machine, at: 500) == ["deliver 1 2"])
        #expect(receive(3, into: &machine, at: 600) == ["cancel n1", "deliver 3 4"])
        #expect(receive(3, 0, into: &machine) == [], "duplicates of what arrived are dropped")
        #expect(machine.positions.map(\.expected) == [5])
    }

    @Test func whenTheGapTimesOutWhatWaitsIsDeliveredAndTheMissingNumbersAreGivenUp() {
        var machine = machine()
        #expect(receive(5, 8, 9, into: &machine) == ["deliver 5", "timer n1 at 2000 ms", "gap 6...7"])
        #expect(Self.describe(machine.gapTimedOut(origin, now: Self.ms(1999))) == [], "not yet")
        #expect(Self.describe(machine.gapTimedOut(origin, now: Self.ms(2000))) == ["deliver 8 9"])
        #expect(receive(6, into: &machine, at: 2100) == [], "a number given up on is not delivered late")
        #expect(receive(10, into: &machine, at: 2100) == ["deliver 10"])
    }

    @Test func theTimerOfAWaitThatEndedDoesNothing() {
        var machine = machine()
        _ = receive(0, 2, into: &machine)  // a wait until 2 s
        #expect(receive(1, into: &machine, at: 500) == ["cancel n1", "deliver 1 2"])
        #expect(receive(4, into: &machine, at: 1000) == ["timer n1 at 3000 ms", "gap 3...3"])
        #expect(Self.describe(machine.gapTimedOut(origin, now: Self.ms(2000))) == [], "the first wait's timer, late")
        #expect(Self.describe(machine.gapTimedOut(origin, now: Self.ms(3000))) == ["deliver 4"])
        #expect(Self.describe(machine.gapTimedOut(.init(node: "n9", incarnation: 1), now: Self.ms(3000))) == [])
    }

    @Test func tooMuchWaitingEndsTheWaitEarlyAndThePassedNumbersStillCountLate() {
        let cost = InboxStateMachine.cost(of: envelope(0))
        var machine = machine(maxWaitingBytes: 2 * cost)
        #expect(receive(0, 2, 3, into: &machine) == ["deliver 0", "timer n1 at 2000 ms", "gap 1...1"])
        #expect(receive(5, into: &machine) == ["cancel n1", "deliver 2 3 5"], "a third is too much")
        #expect(machine.positions.map(\.expected) == [6])
        // 1 and 4 were passed over, not given up: they arrive (a retry) within the gap's time, once each.
        #expect(receive(4, 1, 1, 4, 3, into: &machine, at: 1500) == ["deliver 4", "deliver 1"])
        #expect(receive(6, into: &machine, at: 1500) == ["deliver 6"])
    }

    @Test func aPassedNumberIsNotDeliveredAfterItsGapTimeout() {
        let cost = InboxStateMachine.cost(of: envelope(0))
        var machine = machine(maxWaitingBytes: cost)
        #expect(receive(0, 2, into: &machine) == ["deliver 0", "timer n1 at 2000 ms", "gap 1...1"])
        #expect(receive(3, into: &machine, at: 1000) == ["cancel n1", "deliver 2 3"], "passed 1 s into the wait")
        #expect(receive(1, into: &machine, at: 2000) == [], "2 s after the gap opened the origin gave up on 1")
    }

    @Test func aGapOverTheBytesAtOnceIsReportedAndPassedInOneStep() {
        var machine = machine(maxWaitingBytes: 0)
        _ = receive(0, into: &machine)
        #expect(receive(3, into: &machine) == ["timer n1 at 2000 ms", "gap 1...2", "cancel n1", "deliver 3"])
        #expect(receive(2, 1, into: &machine, at: 100) == ["deliver 2", "deliver 1"], "each late, once")
    }

    @Test func eachOriginRunHasItsOwnStream() {
        var machine = machine()
        let arrivals: [(String, UInt64, UInt64)] = [("n1", 1, 0), ("n2", 1, 40), ("n1", 2, 0), ("n1", 1, 1), ("n1", 2, 2)]
        var delivered: [String] = []
        for (node, incarnation, sequence) in arrivals {
            for case .deliver(let envelopes) in machine.receive(
                envelope(sequence, origin: node, incarnation: incarnation),
                now: 0
            ) {
                delivered += envelopes.map { "\($0.origin)/\($0.incarnation)/\($0.sequence)" }
            }
        }
        #expect(delivered == ["n1/1/0", "n2/1/40", "n1/2/0", "n1/1/1"], "n1/2/2 waits for n1/2/1 only")
        #expect(Set(machine.positions.map { "\($0.node)/\($0.incarnation)/\($0.expected)" }) == ["n1/1/2", "n2/1/41", "n1/2/1"])
    }
}
