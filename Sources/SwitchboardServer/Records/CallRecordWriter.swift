import CoreMetrics
import Logging
import ServiceLifecycle
import SwitchboardCore
import Synchronization

/// Saves call record snapshots in the order the switchboard produced them, off the event loops.
///
/// `enqueue` never blocks; the service drains the queue into the store and, on shutdown, finishes what
/// is queued before the store is closed. The queue is bounded (`records.max_queued`, ``CallRecordQueue``):
/// while the store cannot keep up, a call's later snapshots merge into its waiting entry, and a new
/// call's first snapshot is refused once the queue is full, counted in ``droppedMetric`` and logged
/// once per spell of refusals, so a store that is down costs bounded memory.
final class CallRecordWriter: CallRecordSink, Service {
    /// Counter: call record snapshots refused because the queue was full.
    static let droppedMetric = "switchboard_call_records_dropped_total"

    private struct State {
        var queue: CallRecordQueue
        /// The run loop, waiting for an entry.
        var waiter: CheckedContinuation<Void, Never>?
        /// Graceful shutdown began: drain what waits, then stop.
        var isFinished = false
        /// Snapshots refused since the queue last had room; logged when it has room again.
        var refusedInSpell = 0
    }

    private let store: any CallRecordStore
    private let logger: Logger
    private let state: Mutex<State>
    private let maxQueued: Int
    private let dropped: Counter

    /// - Parameters:
    ///   - maxQueued: calls whose snapshots may wait at once (`records.max_queued`).
    ///   - metrics: where ``droppedMetric`` is counted.
    init(store: any CallRecordStore, maxQueued: Int, metrics: any MetricsFactory = MetricsSystem.factory, logger: Logger) {
        self.store = store
        self.logger = logger
        self.state = Mutex(State(queue: CallRecordQueue(capacity: maxQueued)))
        self.maxQueued = maxQueued
        self.dropped = Counter(label: Self.droppedMetric, dimensions: [], factory: metrics)
    }

    func enqueue(_ record: CallRecord) {
        let (outcome, waiter, spellBegins) = state.withLock { state in
            let outcome = state.queue.enqueue(record)
            var spellBegins = false
            if outcome == .refused {
                spellBegins = state.refusedInSpell == 0
                state.refusedInSpell += 1
            }
            let waiter = outcome == .refused ? nil : state.waiter.take()
            return (outcome, waiter, spellBegins)
        }
        waiter?.resume()
        guard outcome == .refused else { return }
        dropped.increment()
        if spellBegins {
            logger.warning(
                "call record queue full: new calls' records are dropped until the store catches up",
                metadata: ["call_id": "\(record.callId)", "max_queued": "\(maxQueued)"]
            )
        }
    }

    /// Whether `callId` names a record, saved or still queued. A store that cannot answer is taken to
    /// say no: the upsert keeps a record's parties whatever happens (PROTOCOL.md §9).
    func isTaken(callId: String) async -> Bool {
        if state.withLock({ $0.queue.contains(callId: callId) }) { return true }
        do {
            return try await store.record(callId: callId) != nil
        } catch {
            logger.warning("could not look up a call id", metadata: ["call_id": "\(callId)", "error": "\(error)"])
            return false
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            while let record = await next() {
                do {
                    try await store.save(record)
                } catch {
                    logger.error("could not save call record", metadata: ["call_id": "\(record.callId)", "error": "\(error)"])
                }
                state.withLock { $0.queue.saved(callId: record.callId) }
            }
        } onGracefulShutdown: {
            self.finish()
        }
        try await store.shutdown()
    }

    /// The oldest waiting snapshot, waiting for one; `nil` once finished and drained, or cancelled (what
    /// waits then is not saved).
    private func next() async -> CallRecord? {
        while !Task.isCancelled {
            let (taken, refusedInSpell) = state.withLock { state -> (CallRecord??, Int) in
                guard let record = state.queue.next() else { return (state.isFinished ? .some(nil) : nil, 0) }
                var refused = 0
                if state.refusedInSpell > 0, state.queue.count < state.queue.capacity {
                    swap(&refused, &state.refusedInSpell)
                }
                return (.some(record), refused)
            }
            if refusedInSpell > 0 {
                logger.warning("call record queue has room again", metadata: ["dropped": "\(refusedInSpell)"])
            }
            if let taken { return taken }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let wake = state.withLock { state in
                        guard state.queue.count == 0, !state.isFinished else { return true }
                        state.waiter = continuation
                        return false
                    }
                    if wake { continuation.resume() }
                }
            } onCancel: {
                self.finish()
            }
        }
        return nil
    }

    /// Ends the run loop once what waits is saved.
    private func finish() {
        state.withLock { state in
            state.isFinished = true
            return state.waiter.take()
        }?.resume()
    }
}
