import Logging
import MetricsTestKit
import ServiceLifecycle
import SwitchboardCore
import Synchronization
import Testing

@testable import SwitchboardServer

/// A store whose `save` waits until the test opens its gate: a database that has stopped answering.
/// `events` says when a save begins waiting at the gate and when one is done.
private final class GatedStore: CallRecordStore, Sendable {
    enum Event {
        case waiting
        case saved(total: Int)
    }

    let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>], saved: [CallRecord])>((false, [], []))

    init() {
        (events, eventSink) = AsyncStream.makeStream()
    }

    var saved: [CallRecord] { state.withLock { $0.saved } }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    func save(_ record: CallRecord) async throws {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.open { return true }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() } else { eventSink.yield(.waiting) }
        }
        let total = state.withLock { state in
            state.saved.append(record)
            return state.saved.count
        }
        eventSink.yield(.saved(total: total))
    }

    func migrate() async throws {}
    func record(callId: String) async throws -> CallRecord? { state.withLock { $0.saved.last { $0.callId == callId } } }
    func records(involving user: String, limit: Int) async throws -> [CallRecord] { [] }
    func shutdown() async throws {}
}

@Suite struct CallRecordWriterTests {
    func record(_ index: Int, _ status: CallStatus) -> CallRecord {
        CallRecord(
            callId: "call-\(index)",
            callerId: "alice",
            calleeId: "bob",
            callType: .audio,
            status: status,
            createdAt: 1,
            updatedAt: 1
        )
    }

    @Test func aStoreThatStopsAnsweringCostsBoundedRecordsAndCountsTheDropped() async throws {
        let store = GatedStore()
        let metrics = TestMetrics()
        let writer = CallRecordWriter(store: store, maxQueued: 100, metrics: metrics, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [writer], logger: Logger(label: "test"))
        var events = store.events.makeAsyncIterator()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            writer.enqueue(record(0, .invite))
            guard case .waiting = await events.next() else {
                Issue.record("no save began")
                return
            }
            // call-0's invite is being saved and stuck; its hangup waits (an update is never refused), then
            // 99 more calls fill the 100 entries. The other 900 calls are refused, invite and hangup alike
            // (a call the writer does not hold is new each time).
            writer.enqueue(record(0, .hungUp))
            for index in 1..<1_000 {
                writer.enqueue(record(index, .invite))
                writer.enqueue(record(index, .accepted))
                writer.enqueue(record(index, .hungUp))
            }
            let counter = try metrics.expectCounter(CallRecordWriter.droppedMetric)
            print(
                "CallRecordWriter: 1,000 calls × 3 snapshots into max_queued 100, store stuck: \(counter.totalValue) snapshots dropped"
            )
            #expect(counter.totalValue == 900 * 3)
            #expect(await writer.isTaken(callId: "call-0"), "being saved")
            #expect(await writer.isTaken(callId: "call-99"), "waiting")
            #expect(!(await writer.isTaken(callId: "call-100")), "refused: never held")

            // The store answers again: what waited is saved (101 saves), and new calls are taken again.
            store.open()
            while let event = await events.next() {
                if case .saved(let total) = event, total == 101 { break }
            }
            writer.enqueue(record(5_000, .invite))
            while let event = await events.next() {
                if case .saved(let total) = event, total == 102 { break }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let saved = store.saved
        #expect(saved.count == 102, "call-0's invite and hangup, 99 merged calls, the new call")
        #expect(saved.filter { $0.callId == "call-50" }.map(\.status) == [.hungUp], "merged: one save, the latest")
        #expect(saved.last?.callId == "call-5000")
        #expect(try metrics.expectCounter(CallRecordWriter.droppedMetric).totalValue == 2_700, "the new call was not dropped")
    }
}
