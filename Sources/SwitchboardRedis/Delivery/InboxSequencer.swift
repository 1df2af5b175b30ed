import NIOCore
import Synchronization

/// Puts the envelopes of each origin back in the order they were published.
///
/// An envelope that found no receiver is published again (``NodeOutbox``), and one published after it
/// may have arrived first (the inbox's subscriber came back between the two). Envelopes are numbered per
/// origin run and destination; one that arrives ahead of a missing number waits, until the missing one
/// arrives or `gapTimeout` passes: the origin gave up on it and told its sender, or it was lost in a
/// killed subscriber connection's buffer, which nobody can tell the sender (README, cluster failures).
/// A first envelope from an origin run starts its count; a late one (below the count) is delivered at once.
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

    private let gapTimeout: TimeAmount
    private let streams = Mutex<[Origin: Stream]>([:])

    init(gapTimeout: Duration) {
        self.gapTimeout = TimeAmount(gapTimeout)
    }

    /// Hands `envelope`, and any waiting envelopes it releases, to `deliver` in order. Call on the one
    /// event loop that reads the inbox (`deliver` is also called there when a gap times out).
    func accept(_ envelope: Envelope, on eventLoop: any EventLoop, deliver: @escaping @Sendable (Envelope) -> Void) {
        let origin = Origin(node: envelope.origin, incarnation: envelope.incarnation)
        let ready = streams.withLock { streams -> [Envelope] in
            var stream = streams[origin] ?? Stream(expected: envelope.sequence)
            defer { streams[origin] = stream }
            if envelope.sequence < stream.expected { return [envelope] }
            if envelope.sequence > stream.expected {
                stream.waiting[envelope.sequence] = envelope
                if stream.gapTimer == nil {
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
