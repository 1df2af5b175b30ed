import CoreMetrics

/// The seed's four key indicators (PROTOCOL.md §8) as `/metrics` series, derived from call record
/// snapshots; the README's "Queries" turn them into call success rate, connection time, call duration
/// (``SignalingMetrics/Name/callDuration``) and error rate.
///
/// Like ``SignalingMetrics``, every metric object is created up front; a record costs a switch and an
/// atomic add.
package final class CallIndicators: Sendable {
    /// The exported metric names.
    package enum Name {
        /// Counter: calls that reached `call-connected` (counted once, by the first).
        package static let connected = "switchboard_calls_connected_total"
        /// Histogram (seconds): from the invite (`created_at`) to the first `call-connected`.
        package static let connectionTime = "switchboard_call_connection_seconds"
        /// Counter, label `reason`: calls hung up or rejected, by `end_reason` (the known reasons of
        /// PROTOCOL.md §8, the server's `timeout` and `peer-disconnected`, and `other` for any other).
        package static let endReasons = "switchboard_call_end_reasons_total"
    }

    static let histogramBuckets: [String: [Duration]] = [
        Name.connectionTime: [0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60].map(Duration.seconds)
    ]

    private let connected: Counter
    private let connectionTime: Timer
    private let endReasons: CounterTable<CallEndReason>

    init(factory: any MetricsFactory) {
        connected = Counter(label: Name.connected, dimensions: [], factory: factory)
        connectionTime = Timer(label: Name.connectionTime, factory: factory)
        endReasons = CounterTable(label: Name.endReasons, dimension: "reason", factory: factory)
    }

    /// Counts what `record` says about the indicators; `true` when it is the snapshot `call-connected`
    /// writes (status `accepted` with a `connected_time`), which is no transition of the call's status.
    func record(_ record: CallRecord) -> Bool {
        switch record.status {
        case .accepted:
            guard let connectedAt = record.connectedTime else { return false }
            connected.increment()
            connectionTime.recordMilliseconds(max(0, connectedAt - record.createdAt))
            return true
        case .hungUp, .rejected, .missed:
            endReasons[CallEndReason(record.endReason)].increment()
            return false
        case .invite, .failed:
            return false
        }
    }
}

/// The label of `switchboard_call_end_reasons_total`: a bounded set, whatever reasons clients send.
enum CallEndReason: String, CaseIterable, MetricLabelled {
    case userHangup = "user-hangup"
    case iceFailed = "ice-failed"
    case iceTimeout = "ice-timeout"
    case mediaFailed = "media-failed"
    case networkLost = "network-lost"
    case declined
    case busy
    case timeout
    case peerDisconnected = "peer-disconnected"
    case other

    init(_ reason: String?) {
        self = reason.flatMap(Self.init(rawValue:)) ?? .other
    }

    var metricIndex: Int {
        switch self {
        case .userHangup: 0
        case .iceFailed: 1
        case .iceTimeout: 2
        case .mediaFailed: 3
        case .networkLost: 4
        case .declined: 5
        case .busy: 6
        case .timeout: 7
        case .peerDisconnected: 8
        case .other: 9
        }
    }

    var metricLabel: String { rawValue }
}
