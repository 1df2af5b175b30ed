import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import SwitchboardRedis

@Suite struct InboxSequencerTests {
    /// What the sequencer handed on, and the gaps it reported.
    final class Outcome: Sendable {
        let delivered = Mutex<[UInt64]>([])
        let gaps = Mutex<[ClosedRange<UInt64>]>([])
    }

    private func envelope(_ sequence: UInt64, origin: String = "n1", incarnation: UInt64 = 7) -> Envelope {
        Envelope(kind: .deliver, origin: origin, user: "bob", incarnation: incarnation, sequence: sequence)
    }

    private func feed(_ sequences: [UInt64], to sequencer: InboxSequencer, on loop: EmbeddedEventLoop, _ outcome: Outcome) {
        for sequence in sequences {
            sequencer.accept(
                envelope(sequence),
                onGap: { position, through in outcome.gaps.withLock { $0.append(position.expected...through) } },
                deliver: { envelope in outcome.delivered.withLock { $0.append(envelope.sequence) } }
            )
        }
    }

    @Test func deliversInOrderAndHoldsWhatArrivesAheadOfAGap() {
        let loop = EmbeddedEventLoop()
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), eventLoop: loop)
        let outcome = Outcome()
        feed([0, 1, 3, 4], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0, 1])
        #expect(outcome.gaps.withLock { $0 } == [2...2], "the gap is reported once, when it opens")
        feed([2], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0, 1, 2, 3, 4])
        #expect(sequencer.positions.map(\.expected) == [5])
    }

    @Test func dropsDuplicatesOfWhatArrived() {
        let loop = EmbeddedEventLoop()
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), eventLoop: loop)
        let outcome = Outcome()
        feed([0, 1, 2, 1, 0, 3], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0, 1, 2, 3])
    }

    @Test func givesUpOnAGapAfterTheTimeout() {
        let loop = EmbeddedEventLoop()
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), eventLoop: loop)
        let outcome = Outcome()
        feed([5, 8, 9], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [5])
        loop.advanceTime(by: .milliseconds(1999))
        #expect(outcome.delivered.withLock { $0 } == [5])
        loop.advanceTime(by: .milliseconds(1))
        #expect(outcome.delivered.withLock { $0 } == [5, 8, 9])
        feed([6, 10], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [5, 8, 9, 10], "a number given up on is not delivered late")
    }

    @Test func eachOriginRunHasItsOwnCount() {
        let loop = EmbeddedEventLoop()
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), eventLoop: loop)
        let delivered = Mutex<[String]>([])
        for (origin, incarnation, sequence) in [("n1", 1, 0), ("n2", 1, 40), ("n1", 2, 0), ("n1", 1, 1)]
            as [(String, UInt64, UInt64)]
        {
            sequencer.accept(envelope(sequence, origin: origin, incarnation: incarnation)) { envelope in
                delivered.withLock { $0.append("\(envelope.origin)/\(envelope.incarnation)/\(envelope.sequence)") }
            }
        }
        #expect(delivered.withLock { $0 } == ["n1/1/0", "n2/1/40", "n1/2/0", "n1/1/1"])
    }

    @Test func tooMuchWaitingBehindAGapDeliversItEarlyAndTheMissingOneStillCountsLate() {
        let loop = EmbeddedEventLoop()
        let cost = InboxSequencer.cost(of: envelope(0))
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), maxWaitingBytes: 2 * cost, eventLoop: loop)
        let outcome = Outcome()
        feed([0, 2, 3], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0], "2 and 3 wait for 1: within the bytes")
        feed([5], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0, 2, 3, 5], "a third is too much: the wait ends")
        #expect(sequencer.positions.map(\.expected) == [6])
        // 1 and 4 were passed over, not given up: they arrive (a retry), within the gap's time.
        loop.advanceTime(by: .milliseconds(1500))
        feed([4, 1, 1, 4, 3], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0, 2, 3, 5, 4, 1], "each late one once; duplicates dropped")
        feed([6], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 }.last == 6)
    }

    @Test func aNumberPassedOverIsNotDeliveredAfterItsGapTimeout() {
        let loop = EmbeddedEventLoop()
        let cost = InboxSequencer.cost(of: envelope(0))
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), maxWaitingBytes: cost, eventLoop: loop)
        let outcome = Outcome()
        feed([0, 2], to: sequencer, on: loop, outcome)
        loop.advanceTime(by: .seconds(1))
        feed([3], to: sequencer, on: loop, outcome)  // passed early, 1 s into the wait
        #expect(outcome.delivered.withLock { $0 } == [0, 2, 3])
        loop.advanceTime(by: .seconds(1))  // 2 s since the gap opened: the origin gave up on 1
        feed([1], to: sequencer, on: loop, outcome)
        #expect(outcome.delivered.withLock { $0 } == [0, 2, 3])
    }

    @Test func envelopesAcceptedOffTheLoopAreSequencedOnIt() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), eventLoop: loop)
        let delivered = Mutex<[(sequence: UInt64, onLoop: Bool)]>([])
        // From a task, not the loop: each is taken on the loop, in the order accepted.
        for sequence: UInt64 in [0, 2, 1, 3] {
            sequencer.accept(envelope(sequence)) { envelope in
                delivered.withLock { $0.append((envelope.sequence, loop.inEventLoop)) }
            }
        }
        try await loop.submit {}.get()
        let outcome = delivered.withLock { $0 }
        #expect(outcome.map(\.sequence) == [0, 1, 2, 3], "put back in order, not handed on as they came")
        #expect(outcome.allSatisfy { $0.onLoop }, "handed on on the loop")
    }

    @Test func aWaitingEnvelopeKeepsOnlyItsOwnBytes() {
        let loop = EmbeddedEventLoop()
        let sequencer = InboxSequencer(gapTimeout: .seconds(2), eventLoop: loop)
        // The envelope came in a 1 MiB bundle: its message is a small slice of that buffer.
        var bundle = ByteBuffer(repeating: 0, count: 1 << 20)
        bundle.moveReaderIndex(forwardBy: 1000)
        var late = envelope(2)
        late.message = bundle.getSlice(at: bundle.readerIndex, length: 100)!
        let delivered = Mutex<[Int]>([])
        for item in [envelope(0), late, envelope(1)] {
            sequencer.accept(item) { envelope in
                delivered.withLock { $0.append(envelope.message.storageCapacity) }
            }
        }
        let capacities = delivered.withLock { $0 }
        #expect(capacities.count == 3)
        #expect(capacities[2] < 4096, "the waiting envelope held \(capacities[2]) bytes of storage")
    }
}
