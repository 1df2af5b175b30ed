import NIOCore
import SwitchboardBasics

/// The reordering of ``InboxSequencer`` as a pure value: one mutating method per event, each returning
/// the actions its driver performs in order. Time is passed in (monotonic nanoseconds); the gap timers
/// are actions.
///
/// Envelopes are numbered per origin run (node and incarnation) and destination. One that arrives ahead
/// of a missing number waits, until the missing one arrives or the gap timeout passes (the origin gave
/// up on it and told its sender); the gap is reported when it opens, so that the origin can publish the
/// missing ones again. The first envelope of an origin run starts its count; one below the count is a
/// duplicate (a replay of what arrived) and is dropped. Beyond `maxWaitingBytes` waiting per origin run,
/// the wait ends early and everything waiting is delivered; the numbers passed over are still delivered,
/// late, should they arrive before their gap timeout is up (the origin may still be retrying them).
struct InboxStateMachine: Sendable {
    /// One origin run: its envelopes form one numbered stream.
    struct Origin: Hashable, Sendable {
        var node: String
        var incarnation: UInt64
    }

    /// Where one origin run's stream stands: the next number expected.
    struct Position: Sendable, Equatable {
        var node: String
        var incarnation: UInt64
        var expected: UInt64
    }

    enum Action: Sendable {
        /// Hand these envelopes on, in order.
        case deliver([Envelope])
        /// Envelopes `position.expected...through` are missing: ask the origin for them again.
        case reportGap(Position, through: UInt64)
        /// Call ``gapTimedOut(_:now:)`` for `origin` at `at`.
        case scheduleGapTimeout(Origin, at: UInt64)
        /// The gap timer of `origin` is no longer needed.
        case cancelGapTimeout(Origin)
    }

    /// Numbers passed over before their wait was up: delivered (late) if they arrive before `until`.
    fileprivate struct Passed {
        var numbers: ClosedRange<UInt64>
        var until: UInt64
    }

    fileprivate struct Stream {
        var expected: UInt64
        var waiting: [UInt64: Envelope] = [:]
        /// What the waiting envelopes count (``InboxStateMachine/cost(of:)``).
        var waitingBytes = 0
        /// When the wait for the gap being waited for ends; `nil` while there is none (and no timer).
        var gapDeadline: UInt64?
        var passed: [Passed] = []
    }

    /// What keeping one waiting envelope costs besides its message bytes.
    static let overhead = 256
    /// How many ranges of passed-over numbers a stream remembers (the oldest go first).
    static let passedCapacity = 256

    /// How long an envelope waits for a missing number.
    let gapTimeout: UInt64
    let maxWaitingBytes: Int
    private var streams: [Origin: Stream] = [:]

    init(gapTimeout: Duration, maxWaitingBytes: Int) {
        self.gapTimeout = UInt64(max(0, gapTimeout.wholeNanoseconds))
        self.maxWaitingBytes = maxWaitingBytes
    }

    /// Where every origin run's stream stands (after the inbox reconnected, the missing tails are asked for).
    var positions: [Position] {
        streams.map { Position(node: $0.key.node, incarnation: $0.key.incarnation, expected: $0.value.expected) }
    }

    /// What an envelope counts while it waits.
    static func cost(of envelope: Envelope) -> Int {
        envelope.message.readableBytes + envelope.origin.utf8.count + envelope.user.utf8.count + overhead
    }

    // MARK: Events

    /// `envelope` arrived, and if it is the next of a stream with nothing waiting (the common case), it
    /// is counted: `true`, deliver it (what ``receive(_:now:)`` would answer, without building actions).
    /// `false`: nothing changed, call ``receive(_:now:)``.
    mutating func receiveInOrder(_ envelope: Envelope) -> Bool {
        let origin = Origin(node: envelope.origin, incarnation: envelope.incarnation)
        guard let index = streams.index(forKey: origin) else { return false }
        let stream = streams.values[index]
        guard stream.waiting.isEmpty, stream.gapDeadline == nil, envelope.sequence == stream.expected else { return false }
        streams.values[index].expected += 1
        return true
    }

    /// `envelope` arrived at `now`.
    mutating func receive(_ envelope: Envelope, now: UInt64) -> [Action] {
        let origin = Origin(node: envelope.origin, incarnation: envelope.incarnation)
        var stream = streams.removeValue(forKey: origin) ?? Stream(expected: envelope.sequence)
        defer { streams[origin] = stream }
        if envelope.sequence < stream.expected {
            return stream.takeLate(envelope, now: now) ? [.deliver([envelope])] : []
        }
        if envelope.sequence > stream.expected {
            guard stream.waiting[envelope.sequence] == nil else { return [] }  // a duplicate of one waiting
            stream.waiting[envelope.sequence] = Self.compacted(envelope)
            stream.waitingBytes += Self.cost(of: envelope)
            var actions: [Action] = []
            if stream.gapDeadline == nil {
                let deadline = now + gapTimeout
                stream.gapDeadline = deadline
                let position = Position(node: origin.node, incarnation: origin.incarnation, expected: stream.expected)
                actions += [.scheduleGapTimeout(origin, at: deadline), .reportGap(position, through: envelope.sequence - 1)]
            }
            guard stream.waitingBytes > maxWaitingBytes else { return actions }
            // Too much waits behind the gap: deliver it now, and still take the missing numbers until
            // their wait would have ended.
            let until = stream.gapDeadline ?? now + gapTimeout
            return actions + [.cancelGapTimeout(origin), .deliver(stream.passGap(until: until))]
        }
        var ready = [envelope]
        stream.expected += 1
        while let next = stream.waiting.removeValue(forKey: stream.expected) {
            stream.waitingBytes -= Self.cost(of: next)
            ready.append(next)
            stream.expected += 1
        }
        // With another gap behind, the wait (and its timer) goes on from the first.
        guard stream.waiting.isEmpty, stream.gapDeadline != nil else { return [.deliver(ready)] }
        stream.gapDeadline = nil
        return [.cancelGapTimeout(origin), .deliver(ready)]
    }

    /// The gap timer of `origin` fired at `now`: the missing numbers are given up on, and everything
    /// waiting is delivered, in order. A timer of a wait that ended already does nothing.
    mutating func gapTimedOut(_ origin: Origin, now: UInt64) -> [Action] {
        guard var stream = streams[origin], let deadline = stream.gapDeadline, now >= deadline else { return [] }
        let ready = stream.deliverWaiting()
        streams[origin] = stream
        return [.deliver(ready)]
    }

    /// An envelope waiting holds its own bytes, not the whole bundle it came in.
    private static func compacted(_ envelope: Envelope) -> Envelope {
        guard envelope.message.storageCapacity > 2 * envelope.message.readableBytes + 4096 else { return envelope }
        var envelope = envelope
        var copy = ByteBufferAllocator().buffer(capacity: envelope.message.readableBytes)
        copy.writeImmutableBuffer(envelope.message)
        envelope.message = copy
        return envelope
    }
}

extension InboxStateMachine.Stream {
    /// Everything waiting, in order; the count goes on after the last, and the wait ends.
    fileprivate mutating func deliverWaiting() -> [Envelope] {
        let ready = waiting.keys.sorted().compactMap { waiting[$0] }
        waiting.removeAll()
        waitingBytes = 0
        gapDeadline = nil
        expected = max(expected, (ready.last?.sequence ?? 0) + 1)
        return ready
    }

    /// Ends the wait early: everything waiting, in order; the numbers missing among them are taken late
    /// until `until`.
    fileprivate mutating func passGap(until: UInt64) -> [Envelope] {
        var next = expected
        for number in waiting.keys.sorted() {
            if number > next { passed.append(.init(numbers: next...(number - 1), until: until)) }
            next = number + 1
        }
        if passed.count > InboxStateMachine.passedCapacity {
            passed.removeFirst(passed.count - InboxStateMachine.passedCapacity)
        }
        return deliverWaiting()
    }

    /// Whether `envelope`, below the count, is a number passed over (then taken: it is not taken twice)
    /// rather than a duplicate.
    fileprivate mutating func takeLate(_ envelope: Envelope, now: UInt64) -> Bool {
        passed.removeAll { $0.until <= now }
        let number = envelope.sequence
        guard let index = passed.firstIndex(where: { $0.numbers.contains(number) }) else { return false }
        let numbers = passed[index].numbers
        let until = passed[index].until
        passed.remove(at: index)
        if number < numbers.upperBound {
            passed.insert(.init(numbers: (number + 1)...numbers.upperBound, until: until), at: index)
        }
        if number > numbers.lowerBound {
            passed.insert(.init(numbers: numbers.lowerBound...(number - 1), until: until), at: index)
        }
        return true
    }
}
