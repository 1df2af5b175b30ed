import MetricsTestKit
import SwitchboardCore
import Testing

/// The key indicators' series (PROTOCOL.md §8), from the record snapshots a call writes.
@Suite struct CallIndicatorsTests {
    let backend = TestMetrics()
    let metrics: SignalingMetrics

    init() {
        metrics = SignalingMetrics(factory: backend)
    }

    /// The snapshots the engine writes for a call accepted at 1 s, connected at 2.5 s (when `connected`),
    /// hung up at 11 s with `endReason`.
    func snapshots(_ id: String, endReason: String?, connected: Bool) -> [CallRecord] {
        let ringing = Call(id: id, caller: "a", callee: "b", callType: .audio, createdAt: 0)
        let active = Call(id: id, caller: "a", callee: "b", callType: .audio, createdAt: 0, state: .active, startedAt: 1_000)
        let up = Call(
            id: id,
            caller: "a",
            callee: "b",
            callType: .audio,
            createdAt: 0,
            state: .active,
            startedAt: 1_000,
            connectedAt: 2_500
        )
        let ended = (connected ? up : active).record(status: .hungUp, endedAt: 11_000, endReason: endReason, now: 11_000)
        let accepted = active.record(status: .accepted, now: 1_000)
        return [ringing.record(status: .invite, now: 0), accepted]
            + (connected ? [up.record(status: .accepted, now: 2_500)] : []) + [ended]
    }

    @Test func connectedCallsAndTheirConnectionTimeCountOnceAndNotAsAStatus() throws {
        #expect(try backend.count(CallIndicators.Name.connected) == 0, "exists before any call")
        for record in snapshots("c1", endReason: "user-hangup", connected: true) { metrics.record(record) }
        for record in snapshots("c2", endReason: "ice-failed", connected: false) { metrics.record(record) }
        #expect(try backend.count(CallIndicators.Name.connected) == 1)
        #expect(try backend.seconds(CallIndicators.Name.connectionTime) == [2.5])
        #expect(backend.counts(MetricName.calls, by: "status")["accepted"] == 2, "the connected snapshot is no accept")
        #expect(backend.counts(MetricName.calls, by: "status")["hung_up"] == 2)
        #expect(try backend.seconds(MetricName.callDuration) == [10, 10])
    }

    @Test func endReasonsAreABoundedSet() throws {
        let reasons = backend.counts(CallIndicators.Name.endReasons, by: "reason")
        #expect(
            Set(reasons.keys) == [
                "user-hangup", "ice-failed", "ice-timeout", "media-failed", "network-lost", "declined", "busy",
                "timeout", "peer-disconnected", "other",
            ]
        )
        for reason in ["ice-failed", "ice-failed", "media-failed", "made-up-by-a-client", "user-hangup"] {
            for record in snapshots(reason, endReason: reason, connected: false) { metrics.record(record) }
        }
        var rejected = CallRecord(
            callId: "r",
            callerId: "a",
            calleeId: "b",
            callType: .audio,
            status: .rejected,
            createdAt: 0,
            updatedAt: 0
        )
        rejected.endReason = "declined"
        metrics.record(rejected)
        let counted = backend.counts(CallIndicators.Name.endReasons, by: "reason")
        #expect(counted["ice-failed"] == 2)
        #expect(counted["media-failed"] == 1)
        #expect(counted["other"] == 1)
        #expect(counted["user-hangup"] == 1)
        #expect(counted["declined"] == 1)
        #expect(backend.counters(label: CallIndicators.Name.endReasons).count == 10)
    }
}
