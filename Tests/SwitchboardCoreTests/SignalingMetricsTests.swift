import MetricsTestKit
import SwitchboardCore
import Testing

typealias MetricName = SignalingMetrics.Name

extension TestMetrics {
    /// The value of the counter `label` with `dimensions` (which must exist).
    func count(_ label: String, _ dimensions: [(String, String)] = []) throws -> Int64 {
        try expectCounter(label, dimensions).totalValue
    }

    /// Values recorded by the timer `label`, in seconds.
    func seconds(_ label: String) throws -> [Double] {
        try expectTimer(label).values.map { Double($0) / 1e9 }
    }

    /// The counter values of every counter named `label`, keyed by the value of its `dimension` label.
    func counts(_ label: String, by dimension: String) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for counter in counters(label: label) {
            guard let value = counter.dimensions.first(where: { $0.0 == dimension })?.1 else { continue }
            result[value, default: 0] += counter.totalValue
        }
        return result
    }
}

/// `SignalingMetrics` on its own, with swift-metrics' test backend.
@Suite struct SignalingMetricsTests {
    let backend = TestMetrics()
    let metrics: SignalingMetrics

    init() {
        metrics = SignalingMetrics(factory: backend)
    }

    @Test func everyCounterExistsBeforeAnythingIsCounted() throws {
        #expect(backend.counts(MetricName.messagesRelayed, by: "route") == ["local": 0, "remote": 0])
        #expect(
            backend.counts(MetricName.signals, by: "type")
                == Dictionary(uniqueKeysWithValues: SignalType.allCases.map { ($0.rawValue, 0) })
        )
        #expect(
            backend.counts(MetricName.calls, by: "status")
                == ["invite": 0, "accepted": 0, "rejected": 0, "hung_up": 0, "missed": 0, "failed": 0]
        )
        let errors = backend.counters(label: MetricName.errors)
        #expect(errors.count == ErrorReason.allCases.count + CallFailureReason.allCases.count)
        for reason in ErrorReason.allCases {
            #expect(try backend.count(MetricName.errors, [("notice", "error"), ("reason", reason.rawValue)]) == 0)
        }
        for reason in CallFailureReason.allCases {
            #expect(try backend.count(MetricName.errors, [("notice", "call-failed"), ("reason", reason.rawValue)]) == 0)
        }
        _ = try backend.expectTimer(MetricName.inviteToAccept)
        _ = try backend.expectTimer(MetricName.callDuration)
    }

    @Test func eachCaseCountsInItsOwnCounter() throws {
        metrics.relayed(.remote)
        metrics.relayed(.remote)
        metrics.relayed(.local)
        for (index, type) in SignalType.allCases.enumerated() {
            for _ in 0...index { metrics.signal(type) }
        }
        #expect(backend.counts(MetricName.messagesRelayed, by: "route") == ["local": 1, "remote": 2])
        for (index, type) in SignalType.allCases.enumerated() {
            #expect(try backend.count(MetricName.signals, [("type", type.rawValue)]) == Int64(index + 1), "\(type)")
        }
    }

    @Test func onlyFailureNoticesCount() throws {
        metrics.notice(.callRinging(callId: "c1", to: "bob"))
        metrics.notice(.callHangup(callId: "c1", reason: .timeout))
        metrics.notice(.sessionReplaced)
        metrics.notice(.error(.noCall, message: "no call"))
        metrics.notice(.callFailed(callId: nil, to: "bob", reason: .offline))
        metrics.notice(.callFailed(callId: nil, to: "bob", reason: .offline))
        metrics.error(.offline)

        #expect(try backend.count(MetricName.errors, [("notice", "error"), ("reason", "no-call")]) == 1)
        #expect(try backend.count(MetricName.errors, [("notice", "error"), ("reason", "offline")]) == 1)
        #expect(try backend.count(MetricName.errors, [("notice", "call-failed"), ("reason", "offline")]) == 2)
        #expect(backend.counters(label: MetricName.errors).map(\.totalValue).reduce(0, +) == 4)
    }

    @Test func recordsCountTheirStatusAndTimeTheCall() throws {
        let invite = CallRecord(
            callId: "c1",
            callerId: "a",
            calleeId: "b",
            callType: .audio,
            status: .invite,
            createdAt: 10_000,
            updatedAt: 10_000
        )
        var accepted = invite
        accepted.status = .accepted
        accepted.startTime = 12_500
        var ended = accepted
        ended.status = .hungUp
        ended.endTime = 72_750
        ended.duration = 60

        for record in [invite, accepted, ended] { metrics.record(record) }

        #expect(backend.counts(MetricName.calls, by: "status")["invite"] == 1)
        #expect(backend.counts(MetricName.calls, by: "status")["accepted"] == 1)
        #expect(backend.counts(MetricName.calls, by: "status")["hung_up"] == 1)
        #expect(try backend.seconds(MetricName.inviteToAccept) == [2.5])
        #expect(try backend.seconds(MetricName.callDuration) == [60.25])
    }

    @Test func unansweredCallsAreNotTimed() throws {
        for status in [CallStatus.rejected, .hungUp, .missed, .failed] {
            metrics.record(
                CallRecord(
                    callId: "c1",
                    callerId: "a",
                    calleeId: "b",
                    callType: .video,
                    status: status,
                    endTime: 20_000,
                    createdAt: 10_000,
                    updatedAt: 20_000
                )
            )
        }
        #expect(
            backend.counts(MetricName.calls, by: "status")
                == ["invite": 0, "accepted": 0, "rejected": 1, "hung_up": 1, "missed": 1, "failed": 1]
        )
        #expect(try backend.seconds(MetricName.inviteToAccept).isEmpty)
        #expect(try backend.seconds(MetricName.callDuration).isEmpty)
    }

    @Test func meteringSinkCountsThenPassesEveryRecordOn() throws {
        let sink = RecordingRecordSink()
        let metered = metrics.metering(sink)
        let records = [CallStatus.invite, .accepted, .hungUp].enumerated().map { index, status in
            CallRecord(
                callId: "c1",
                callerId: "a",
                calleeId: "b",
                callType: .audio,
                status: status,
                startTime: index > 0 ? 1_000 : nil,
                endTime: index > 1 ? 2_000 : nil,
                createdAt: 0,
                updatedAt: Int64(index)
            )
        }
        for record in records { metered.enqueue(record) }
        #expect(sink.records == records)
        #expect(backend.counters(label: MetricName.calls).map(\.totalValue).reduce(0, +) == 3)
    }
}
