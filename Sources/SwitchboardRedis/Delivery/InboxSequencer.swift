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
final class InboxSequencer: Sendable {
    private struct Origin: Hashable {
        var node: String
        var incarnation: UInt64
    }

    private struct Stream {
        var expected: UInt64
        var waiting: [UInt64: Envelope] = [:]
        var gapTimer: Scheduled<Void>?
    }

    /// Where one origin run's stream stands: the next number expected.
    struct Position: Sendable, Equatable {
        var node: String
        var incarnation: UInt64
        var expected: UInt64
    }

    private let gapTimeout: TimeAmount
    private let streams = Mutex<[Origin: Stream]>([:])

    init(gapTimeout: Duration) {
        self.gapTimeout = TimeAmount(gapTimeout)
    }

    /// Where every origin run's stream stands (after the inbox reconnected, the missing tails are asked for).
    var positions: [Position] {
        streams.withLock { streams in
            streams.map { Position(node: $0.key.node, incarnation: $0.key.incarnation, expected: $0.value.expected) }
        }
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
        var gap: (Position, UInt64)?
        let ready = streams.withLock { streams -> [Envelope] in
            var stream = streams[origin] ?? Stream(expected: envelope.sequence)
            defer { streams[origin] = stream }
            if envelope.sequence < stream.expected { return [] }
            if envelope.sequence > stream.expected {
                stream.waiting[envelope.sequence] = envelope
                if stream.gapTimer == nil {
                    gap = (Position(node: origin.node, incarnation: origin.incarnation, expected: stream.expected), envelope.sequence - 1)
                    stream.gapTimer = eventLoop.scheduleTask(in: gapTimeout) { [self] in
                        for waiting in skipGap(of: origin) { deliver(waiting) }
                    }
                }
                return []
            }
            var ready = [envelope]
            stream.expected += 1
            while let next = stream.waiting.removeValue(forKey: stream.expected) {
                ready.append(next)
                stream.expected += 1
            }
            if stream.waiting.isEmpty {
                stream.gapTimer?.cancel()
                stream.gapTimer = nil
            }
            return ready
        }
        if let (position, through) = gap { onGap(position, through) }
        for envelope in ready { deliver(envelope) }
    }

    /// Gives up on the missing numbers: everything waiting, in order.
    private func skipGap(of origin: Origin) -> [Envelope] {
        streams.withLock { streams in
            guard var stream = streams[origin] else { return [] }
            let ready = stream.waiting.keys.sorted().compactMap { stream.waiting[$0] }
            stream.waiting.removeAll()
            stream.gapTimer = nil
            stream.expected = max(stream.expected, (ready.last?.sequence ?? 0) + 1)
            streams[origin] = stream
            return ready
        }
    }
}
