// Label values and dense indexes for the enums `SignalingMetrics` counts by.
//
// The index of each case is written out as a switch (not `allCases.firstIndex(of:)`, which allocates,
// nor a dictionary, which hashes): finding a pre-created counter on the hot path is one jump and one
// array read. `CounterTable` checks at init that every index is used exactly once.

/// An enum whose cases each get one pre-created counter.
protocol MetricLabelled: CaseIterable {
    /// The case's position, `0..<allCases.count`.
    var metricIndex: Int { get }
    /// The label value the case is exported with.
    var metricLabel: String { get }
}

extension SignalType: MetricLabelled {
    var metricIndex: Int {
        switch self {
        case .callInvite: 0
        case .callAccept: 1
        case .callReject: 2
        case .callHangup: 3
        case .offer: 4
        case .answer: 5
        case .iceCandidate: 6
        case .callConnected: 7
        }
    }

    var metricLabel: String { rawValue }
}

extension RelayRoute: MetricLabelled {
    var metricIndex: Int {
        switch self {
        case .local: 0
        case .remote: 1
        }
    }

    var metricLabel: String { rawValue }
}

extension ErrorReason: MetricLabelled {
    var metricIndex: Int {
        switch self {
        case .invalidMessage: 0
        case .invalidSignal: 1
        case .unknownSignal: 2
        case .noCall: 3
        case .offline: 4
        case .unsupported: 5
        case .rateLimited: 6
        case .unavailable: 7
        case .forbidden: 8
        }
    }

    var metricLabel: String { rawValue }
}

extension CallFailureReason: MetricLabelled {
    var metricIndex: Int {
        switch self {
        case .offline: 0
        case .busy: 1
        case .forbidden: 2
        case .rateLimited: 3
        case .unavailable: 4
        case .glare: 5
        }
    }

    var metricLabel: String { rawValue }
}

extension CallStatus: MetricLabelled {
    var metricIndex: Int { rawValue }

    /// The status names of PROTOCOL.md §5 (`hung_up`, not `hungUp`).
    var metricLabel: String {
        switch self {
        case .invite: "invite"
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .hungUp: "hung_up"
        case .missed: "missed"
        case .failed: "failed"
        }
    }
}
