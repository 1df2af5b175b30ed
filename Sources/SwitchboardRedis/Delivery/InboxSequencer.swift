import NIOCore
import Synchronization

/// Puts the envelopes of each origin back in the order they were published.
///
/// An envelope that found no receiver is published again (``NodeOutbox``), and one published after it
/// may have arrived first (the inbox's subscriber came back between the two). Envelopes are numbered per
/// origin run and destination; one that arrives ahead of a missing number waits, until the missing one
/// arrives or `gapTimeout` passes (the origin gave up on it and told its sender). A gap is reported to
/// `onGap` when it opens, so the origin can publish the missing ones again (they may have been lost in a
/// killed subscriber connection's buffer, which `PUBLISH` cannot tell). A first envelope from an origin
/// run starts its count; one below the count is a duplicate (a replay of what arrived) and is dropped.
///
/// What waits is bounded (PROTOCOL.md §9): beyond `maxWaitingBytes` per origin run, the wait ends early
/// and everything waiting is delivered; the numbers passed over are still delivered, late, should they
/// arrive before their `gapTimeout` is up (the origin may still be retrying them).
final class InboxSequencer: Sendable {
    private struct Origin: Hashable {
        var node: String
        var incarnation: UInt64
    }

    /// Numbers passed over before their wait was up: delivered (late) if they arrive before `until`.
    fileprivate struct Passed {
        var numbers: ClosedRange<UInt64>
        var until: NIODeadline
    }

    fileprivate struct Stream {
        var expected: UInt64
        var waiting: [UInt64: Envelope] = [:]
        /// What the waiting envelopes count (``InboxSequencer/cost(of:)``).
        var waitingBytes = 0
        var gapTimer: Scheduled<Void>?
        /// When the gap being waited for opened.
        var gapOpened: NIODeadline?
        var passed: [Passed] = []
    }

    /// Where one origin run's stream stands: the next number expected.
    struct Position: Sendable, Equatable {
        var node: String
        var incarnation: UInt64
        var expected: UInt64
    }

    /// What keeping one waiting envelope costs besides its message bytes.
    static let overhead = 256
    /// How many ranges of passed-over numbers a stream remembers (the oldest go first).
    static let passedCapacity = 256

    private let gapTimeout: TimeAmount
    private let maxWaitingBytes: Int
    private let streams = Mutex<[Origin: Stream]>([:])

    init(gapTimeout: Duration, maxWaitingBytes: Int = ClusterBufferLimits.standard.reorderMaxBytes) {
        self.gapTimeout = TimeAmount(gapTimeout)
        self.maxWaitingBytes = maxWaitingBytes
    }

    /// Where every origin run's stream stands (after the inbox reconnected, the missing tails are asked for).
    var positions: [Position] {
        streams.withLock { streams in
            streams.map { Position(node: $0.key.node, incarnation: $0.key.incarnation, expected: $0.value.expected) }
        }
    }

    /// What an envelope counts while it waits.
    static func cost(of envelope: Envelope) -> Int {
        envelope.message.readableBytes + envelope.origin.utf8.count + envelope.user.utf8.count + overhead
    }

    /// Hands `envelope`, and any waiting envelopes it releases, to `deliver` in order. Call on the one
    /// event loop that reads the inbox (`deliver` is also called there when a gap times out). `onGap` is
    /// told when envelopes `position.expected...through` are found missing.
    func accept(
        _ envelope: Envelope,
        on eventLoop: any EventLoop,
        onGap: (_ position: Position, _ through: UInt64) -> Void = { _, _ in },
        deliver: @escaping @Sendable (Envelope) -> Void
    ) {
        let origin = Origin(node: envelope.origin, incarnation: envelope.incarnation)
        let now = eventLoop.now
        var gap: (Position, UInt64)?
        let ready = streams.withLock { streams -> [Envelope] in
            var stream = streams.removeValue(forKey: origin) ?? Stream(expected: envelope.sequence)
            defer { streams[origin] = stream }
            if envelope.sequence < stream.expected {
                return stream.takeLate(envelope, now: now) ? [envelope] : []
            }
            if envelope.sequence > stream.expected {
                guard stream.waiting[envelope.sequence] == nil else { return [] }  // a duplicate of one waiting
                stream.waiting[envelope.sequence] = Self.compacted(envelope)
                stream.waitingBytes += Self.cost(of: envelope)
                if stream.gapTimer == nil {
                    gap = (Position(node: origin.node, incarnation: origin.incarnation, expected: stream.expected), envelope.sequence - 1)
                    stream.gapOpened = now
                    stream.gapTimer = eventLoop.scheduleTask(in: gapTimeout) { [self] in
                        for waiting in skipGap(of: origin) { deliver(waiting) }
                    }
                }
                guard stream.waitingBytes > maxWaitingBytes else { return [] }
                // Too much waits behind the gap: deliver it now, and still take the missing numbers
                // until their wait would have ended.
                return stream.passGap(until: (stream.gapOpened ?? now) + gapTimeout)
            }
            var ready = [envelope]
            stream.expected += 1
            while let next = stream.waiting.removeValue(forKey: stream.expected) {
                stream.waitingBytes -= Self.cost(of: next)
                ready.append(next)
                stream.expected += 1
            }
            // With another gap behind, the wait (and its timer) goes on from the first.
            if stream.waiting.isEmpty { stream.endWait() }
            return ready
        }
        if let (position, through) = gap { onGap(position, through) }
        for envelope in ready { deliver(envelope) }
    }

    /// Gives up on the missing numbers: everything waiting, in order.
    private func skipGap(of origin: Origin) -> [Envelope] {
        streams.withLock { streams in
            guard var stream = streams.removeValue(forKey: origin) else { return [] }
            defer { streams[origin] = stream }
            stream.gapTimer = nil
            return stream.deliverWaiting()
        }
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

extension InboxSequencer.Stream {
    /// Everything waiting, in order; the count goes on after the last.
    fileprivate mutating func deliverWaiting() -> [Envelope] {
        let ready = waiting.keys.sorted().compactMap { waiting[$0] }
        waiting.removeAll()
        waitingBytes = 0
        gapOpened = nil
        expected = max(expected, (ready.last?.sequence ?? 0) + 1)
        return ready
    }

    /// Ends the wait early: everything waiting, in order; the numbers missing among them are taken late
    /// until `until`.
    fileprivate mutating func passGap(until: NIODeadline) -> [Envelope] {
        var next = expected
        for number in waiting.keys.sorted() {
            if number > next { passed.append(.init(numbers: next...(number - 1), until: until)) }
            next = number + 1
        }
        if passed.count > InboxSequencer.passedCapacity { passed.removeFirst(passed.count - InboxSequencer.passedCapacity) }
        endWait()
        return deliverWaiting()
    }

    fileprivate mutating func endWait() {
        gapTimer?.cancel()
        gapTimer = nil
        gapOpened = nil
    }

    /// Whether `envelope`, below the count, is a number passed over (then taken: it is not taken twice)
    /// rather than a duplicate.
    fileprivate mutating func takeLate(_ envelope: Envelope, now: NIODeadline) -> Bool {
        passed.removeAll { $0.until <= now }
        let number = envelope.sequence
        guard let index = passed.firstIndex(where: { $0.numbers.contains(number) }) else { return false }
        let numbers = passed[index].numbers
        let until = passed[index].until
        passed.remove(at: index)
        if number < numbers.upperBound { passed.insert(.init(numbers: (number + 1)...numbers.upperBound, until: until), at: index) }
        if number > numbers.lowerBound { passed.insert(.init(numbers: numbers.lowerBound...(number - 1), until: until), at: index) }
        return true
    }
}
