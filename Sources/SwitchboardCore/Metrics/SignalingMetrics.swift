import CoreMetrics

/// What the signaling engine counts for `/metrics`, through the swift-metrics facade (the node exports
/// it as Prometheus text; see docs/METRICS.md).
///
/// Every metric object is created once, in `init`: the methods only pick a pre-created counter (by a
/// switch, no hashing, no label formatting) and increment it, so calling them on the relay hot path
/// costs one atomic add with the Prometheus backend. All methods are thread-safe and never block.
///
/// An engine (the single-node ``Switchboard``, or a cluster engine) calls:
/// - ``relayed(_:)`` once per message delivered to its recipient (not for server notices);
/// - ``signal(_:)`` once per signal that parsed (whatever the engine then does with it);
/// - ``notice(_:)`` for every notice it sends a client (only `error` and `call-failed` are counted);
/// - ``record(_:)`` for every call record snapshot, most simply by wrapping its record sink with
///   ``metering(_:)``.
///
/// Connection gauges are not here: the node reads them at scrape time from the engine's own counts
/// (`sessionCount`, the WebSocket gate), which are exact and cost nothing per connection.
/// Redis metrics (command latency, pub/sub messages in and out) are counted by RedisWire's `RedisMetrics`.
package final class SignalingMetrics: Sendable {
    /// The exported metric names.
    package enum Name {
        /// Counter, label `route` (`local` | `remote`): messages delivered to their recipient.
        package static let messagesRelayed = "switchboard_messages_relayed_total"
        /// Counter, label `type` (`call-invite`, `offer`, …): signals received that parsed.
        package static let signals = "switchboard_signals_total"
        /// Counter, label `status` (`invite`, `accepted`, `rejected`, `hung_up`, `missed`, `failed`):
        /// call record transitions, one per record snapshot written.
        package static let calls = "switchboard_calls_total"
        /// Histogram (seconds): from the invite (`created_at`) to the accept (`start_time`).
        package static let inviteToAccept = "switchboard_call_invite_to_accept_seconds"
        /// Histogram (seconds): from the accept (`start_time`) to the end (`end_time`) of answered calls.
        package static let callDuration = "switchboard_call_duration_seconds"
        /// Counter, labels `notice` (`error` | `call-failed`) and `reason`: failure notices sent to clients.
        package static let errors = "switchboard_errors_total"
        /// Counter: signals kept for a party who is reconnecting (PROTOCOL.md §8).
        package static let keptSignals = "switchboard_kept_signals_total"
        /// Counter: kept signals that gave way to newer ones (their senders were told `offline`).
        package static let keptSignalsDisplaced = "switchboard_kept_signals_displaced_total"
    }

    /// Bucket upper bounds for this type's histograms, by metric name; a Prometheus factory is set up
    /// with them (`PrometheusMetricsFactory.durationHistogramBuckets`).
    package static let histogramBuckets: [String: [Duration]] = [
        Name.inviteToAccept: [0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60].map(Duration.seconds),
        Name.callDuration: [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600].map(Duration.seconds),
    ].merging(CallIndicators.histogramBuckets) { first, _ in first }

    private let relayedCounters: CounterTable<RelayRoute>
    private let signalCounters: CounterTable<SignalType>
    private let statusCounters: CounterTable<CallStatus>
    private let errorCounters: CounterTable<ErrorReason>
    private let callFailedCounters: CounterTable<CallFailureReason>
    private let keptSignals: Counter
    private let keptSignalsDisplaced: Counter
    private let inviteToAccept: Timer
    private let callDuration: Timer
    private let indicators: CallIndicators

    /// Creates every metric with `factory`: by default the one bootstrapped for the process
    /// (`MetricsSystem.factory`, a no-op until bootstrapped).
    package init(factory: any MetricsFactory = MetricsSystem.factory) {
        relayedCounters = CounterTable(label: Name.messagesRelayed, dimension: "route", factory: factory)
        signalCounters = CounterTable(label: Name.signals, dimension: "type", factory: factory)
        statusCounters = CounterTable(label: Name.calls, dimension: "status", factory: factory)
        errorCounters = CounterTable(label: Name.errors, dimension: "reason", fixed: [("notice", "error")], factory: factory)
        callFailedCounters = CounterTable(
            label: Name.errors,
            dimension: "reason",
            fixed: [("notice", "call-failed")],
            factory: factory
        )
        keptSignals = Counter(label: Name.keptSignals, dimensions: [], factory: factory)
        keptSignalsDisplaced = Counter(label: Name.keptSignalsDisplaced, dimensions: [], factory: factory)
        inviteToAccept = Timer(label: Name.inviteToAccept, factory: factory)
        indicators = CallIndicators(factory: factory)
        callDuration = Timer(label: Name.callDuration, factory: factory)
    }

    /// A message (chat message or signal) was handed to its recipient's session or published for it.
    ///
    /// Count each message once, on the node that routes it: `.remote` when it publishes the message
    /// for another node; the node that delivers a message taken from pub/sub does not count it again
    /// (RedisWire counts it as a pub/sub message in).
    package func relayed(_ route: RelayRoute) {
        relayedCounters[route].increment()
    }

    /// A signal of `type` arrived and parsed, before the engine decides what it does.
    package func signal(_ type: SignalType) {
        signalCounters[type].increment()
    }

    /// A notice went to a client: `error` and `call-failed` notices count by reason; others do not.
    package func notice(_ notice: Notice) {
        switch notice {
        case .error(let reason, _):
            error(reason)
        case .callFailed(_, _, let reason):
            callFailed(reason)
        case .keptSignalGaveWay:
            error(.offline)
        case .callResumed, .peerReconnected:
            break
        case .callRinging, .callHangup, .sessionReplaced, .iceServers:
            break
        }
    }

    /// An `error` notice with `reason` went to a client.
    package func error(_ reason: ErrorReason) {
        errorCounters[reason].increment()
    }

    /// A signal was kept for a party who is reconnecting.
    package func keptSignal() {
        keptSignals.increment()
    }

    /// `count` signals kept for a party who is reconnecting gave way to newer ones.
    package func keptSignalsDisplaced(_ count: Int) {
        keptSignalsDisplaced.increment(by: Int64(count))
    }

    /// A `call-failed` notice with `reason` went to a client.
    package func callFailed(_ reason: CallFailureReason) {
        callFailedCounters[reason].increment()
    }

    /// A call record snapshot was written: counts its status, and when it is the accept (status
    /// `accepted` with a `start_time`) records invite→accept; when it ends an answered call (both
    /// `start_time` and `end_time`) records the call's duration. The key indicators (``CallIndicators``)
    /// count the connected snapshot (not as a status) and how calls ended.
    ///
    /// Call it once per transition (the snapshots a record sink receives are exactly that).
    package func record(_ record: CallRecord) {
        // The key indicators (PROTOCOL.md §8); the connected snapshot changes no status.
        if indicators.record(record) { return }
        statusCounters[record.status].increment()
        guard let start = record.startTime else { return }
        if record.status == .accepted {
            inviteToAccept.recordMilliseconds(max(0, start - record.createdAt))
        }
        if let end = record.endTime {
            callDuration.recordMilliseconds(max(0, end - start))
        }
    }

    /// `sink`, with every record it receives also passed to ``record(_:)`` first.
    package func metering(_ sink: any CallRecordSink) -> any CallRecordSink {
        MeteredCallRecordSink(base: sink, metrics: self)
    }
}
