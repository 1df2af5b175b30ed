import Logging
import ServiceLifecycle
import SwitchboardCore

/// Saves call record snapshots in the order the switchboard produced them, off the event loops.
///
/// `enqueue` never blocks; the service drains the queue into the store and, on shutdown, finishes what
/// is queued before the store is closed.
struct CallRecordWriter: CallRecordSink, Service {
    private let store: any CallRecordStore
    private let logger: Logger
    private let stream: AsyncStream<CallRecord>
    private let continuation: AsyncStream<CallRecord>.Continuation

    init(store: any CallRecordStore, logger: Logger) {
        self.store = store
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: CallRecord.self)
    }

    func enqueue(_ record: CallRecord) {
        continuation.yield(record)
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await record in stream {
                do {
                    try await store.save(record)
                } catch {
                    logger.error("could not save call record", metadata: ["call_id": "\(record.callId)", "error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
        try await store.shutdown()
    }
}
