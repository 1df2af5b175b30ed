import Logging
import ServiceLifecycle
import Synchronization
import SwitchboardCore

/// Saves call record snapshots in the order the switchboard produced them, off the event loops.
///
/// `enqueue` never blocks; the service drains the queue into the store and, on shutdown, finishes what
/// is queued before the store is closed.
final class CallRecordWriter: CallRecordSink, Service {
    private let store: any CallRecordStore
    private let logger: Logger
    private let stream: AsyncStream<CallRecord>
    private let continuation: AsyncStream<CallRecord>.Continuation
    /// How many queued, not yet saved snapshots each call id has: taken before the store knows it.
    private let queued = Mutex<[String: Int]>([:])

    init(store: any CallRecordStore, logger: Logger) {
        self.store = store
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: CallRecord.self)
    }

    func enqueue(_ record: CallRecord) {
        queued.withLock { $0[record.callId, default: 0] += 1 }
        continuation.yield(record)
    }

    /// Whether `callId` names a record, saved or still queued. A store that cannot answer is taken to
    /// say no: the upsert keeps a record's parties whatever happens (PROTOCOL.md §9).
    func isTaken(callId: String) async -> Bool {
        if queued.withLock({ $0[callId] != nil }) { return true }
        do {
            return try await store.record(callId: callId) != nil
        } catch {
            logger.warning("could not look up a call id", metadata: ["call_id": "\(callId)", "error": "\(error)"])
            return false
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await record in stream {
                do {
                    try await store.save(record)
                } catch {
                    logger.error("could not save call record", metadata: ["call_id": "\(record.callId)", "error": "\(error)"])
                }
                queued.withLock { queued in
                    if queued[record.callId, default: 1] <= 1 {
                        queued[record.callId] = nil
                    } else {
                        queued[record.callId]! -= 1
                    }
                }
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
        try await store.shutdown()
    }
}
