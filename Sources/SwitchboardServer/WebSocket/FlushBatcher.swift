import NIOCore
import NIOPosix
import NIOWebSocket

/// Batches the writes an event loop makes while it reads a burst of messages.
///
/// While a signaling connection on a loop handles reads, messages it relays to connections on the same
/// loop are written but not flushed, and messages for connections on other loops are collected; the
/// reader's `channelReadComplete` flushes the first (one `writev` per recipient per burst) and hands the
/// second to each other loop in one task (one wake-up per loop per burst, not one per message).
/// Outside a read burst (timers, HTTP) writes go out at once, so nothing waits for a read that may not come.
final class FlushBatcher: Sendable {
    /// One loop's pending flushes; only touched on that loop.
    final class Pending {
        fileprivate var reading = 0
        fileprivate var queued: [Target] = []
        fileprivate var outbox: [ObjectIdentifier: (loop: any EventLoop, deliveries: [Delivery])] = [:]
    }

    /// What to do to a connection on another loop: write a binary message (its payload, with room in
    /// front for the frame header), or close after what was written.
    enum Action {
        case binary(ByteBuffer)
        case close(WebSocketCloseRequest)
    }

    /// An action for a connection on another loop.
    typealias Delivery = (target: NIOLoopBound<Target>, action: Action)

    /// A channel that can be queued for a flush once per burst; only touched on its loop.
    ///
    /// A target made before its WebSocket pipeline is in place (the session is registered before the
    /// 101 goes out) keeps what it is asked to do until ``open()``; at most `maxWaiting` actions, beyond
    /// which the connection is closed (it would never catch up).
    final class Target {
        let channel: any Channel
        /// The session handler, once open: frames are written and flushed from it, not from the
        /// pipeline's tail.
        private var writer: WebSocketSessionHandler?
        fileprivate var isQueued = false
        /// What to do once open; `nil` when open.
        private var waiting: [Action]?
        private static let maxWaiting = 1024

        init(channel: any Channel, open: Bool = true) {
            self.channel = channel
            self.waiting = open ? nil : []
        }

        /// The pipeline is ready (with `writer` in it, when given): performs what waited, in order, and
        /// flushes.
        func open(writer: WebSocketSessionHandler?) {
            guard let waiting else { return }
            self.writer = writer
            self.waiting = nil
            for action in waiting { perform(action) }
            flush()
        }

        /// Writes a message (not flushed) or asks for a close after what was written before.
        func perform(_ action: consuming Action) {
            if waiting != nil {
                guard waiting!.count < Self.maxWaiting else { return channel.close(promise: nil) }
                waiting!.append(action)
                return
            }
            switch consume action {
            case .binary(let payload):
                if let writer {
                    writer.send(binary: consume payload)
                } else {
                    channel.write(WebSocketFrame(fin: true, opcode: .binary, data: payload), promise: nil)
                }
            case .close(let request):
                flush()
                channel.triggerUserOutboundEvent(request, promise: nil)
            }
        }

        /// Flushes the channel and takes it off the batch.
        func flush() {
            isQueued = false
            if let writer {
                writer.flush()
            } else {
                channel.flush()
            }
        }
    }

    private let pending: [ObjectIdentifier: NIOLoopBoundBox<Pending>]

    /// A batcher for every loop of `group`.
    init(group: any EventLoopGroup) {
        var pending: [ObjectIdentifier: NIOLoopBoundBox<Pending>] = [:]
        for loop in group.makeIterator() {
            pending[ObjectIdentifier(loop)] = .makeBoxSendingValue(Pending(), eventLoop: loop)
        }
        self.pending = pending
    }

    /// Marks the start of a read burst on the current loop.
    func beginReading(on loop: any EventLoop) {
        pending[ObjectIdentifier(loop)]?.value.reading += 1
    }

    /// Ends a read burst on the current loop and flushes what it wrote.
    func endReading(on loop: any EventLoop) {
        guard let state = pending[ObjectIdentifier(loop)]?.value, state.reading > 0 else { return }
        state.reading -= 1
        guard state.reading == 0 else { return }
        if !state.outbox.isEmpty {
            let outbox = state.outbox
            state.outbox.removeAll(keepingCapacity: true)
            for (loop, deliveries) in outbox.values {
                loop.execute { Self.write(deliveries) }
            }
        }
        guard !state.queued.isEmpty else { return }
        // Swapped out and back, so that the array's storage is kept rather than copied each burst.
        var queued: [Target] = []
        swap(&queued, &state.queued)
        for target in queued { target.flush() }
        queued.removeAll(keepingCapacity: true)
        if state.queued.isEmpty { state.queued = queued }
    }

    /// Makes the rest of the current loop tick a burst, for writes caused by something other than a
    /// WebSocket read (messages from Redis pub/sub): they share flushes as a read burst's do. Call on `loop`.
    func batchUntilEndOfTick(on loop: any EventLoop) {
        guard let state = pending[ObjectIdentifier(loop)]?.value, state.reading == 0 else { return }
        state.reading = 1
        // Tasks enqueued now run after this tick's I/O: after every read of the burst.
        loop.execute { self.endReading(on: loop) }
    }

    /// Flushes `target` now, or at the end of the current read burst. Call on the channel's loop.
    func flush(_ target: Target) {
        guard let state = pending[ObjectIdentifier(target.channel.eventLoop)]?.value, state.reading > 0 else {
            return target.flush()
        }
        guard !target.isQueued else { return }
        target.isQueued = true
        state.queued.append(target)
    }

    /// Sends `action` to `target`'s channel, which lives on another loop than the caller's: with the
    /// caller's burst when the caller is in one, else in a task of its own. Actions from one caller keep
    /// their order (a close follows the frames sent before it).
    func send(_ action: Action, to target: NIOLoopBound<Target>, on loop: any EventLoop) {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop,
            let state = pending[ObjectIdentifier(current)]?.value, state.reading > 0
        {
            state.outbox[ObjectIdentifier(loop), default: (loop, [])].deliveries.append((target, action))
        } else {
            loop.execute { Self.write([(target, action)]) }
        }
    }

    /// Performs deliveries on their (common) loop, one flush per channel.
    private static func write(_ deliveries: [Delivery]) {
        for (target, action) in deliveries {
            let target = target.value
            target.perform(action)
            if case .binary = action { target.isQueued = true }
        }
        for (target, _) in deliveries where target.value.isQueued {
            target.value.flush()  // clears isQueued: once per channel
        }
    }
}
