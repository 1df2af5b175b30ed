/// How a call ended up, as stored in `call_records.status` (PROTOCOL.md §5).
package enum CallStatus: Int, Sendable, Codable, CaseIterable {
    case invite = 0
    case accepted = 1
    case rejected = 2
    case hungUp = 3
    case missed = 4
    case failed = 5
}

/// Audio or video, as stored in `call_records.call_type`.
package enum CallType: Int, Sendable, Codable, CaseIterable {
    case audio = 1
    case video = 2

    /// The wire name used in signals (`"audio"` / `"video"`).
    package var wireName: String { self == .audio ? "audio" : "video" }

    /// Parses the wire name; `nil` for anything else.
    package init?(wireName: String) {
        switch wireName {
        case "audio": self = .audio
        case "video": self = .video
        default: return nil
        }
    }
}

/// One row of `call_records`: a snapshot of a call at its latest transition.
///
/// Times are unix milliseconds; `duration` is whole seconds between `startTime` and `endTime`.
package struct CallRecord: Sendable, Equatable, Codable {
    package var callId: String
    package var callerId: String
    package var calleeId: String
    package var callType: CallType
    package var status: CallStatus
    package var startTime: Int64?
    package var endTime: Int64?
    package var duration: Int
    package var endReason: String?
    /// When a party first reported its media connection up (`call-connected`, PROTOCOL.md §8).
    package var connectedTime: Int64?
    package var createdAt: Int64
    package var updatedAt: Int64

    package init(
        callId: String,
        callerId: String,
        calleeId: String,
        callType: CallType,
        status: CallStatus,
        startTime: Int64? = nil,
        endTime: Int64? = nil,
        duration: Int = 0,
        endReason: String? = nil,
        connectedTime: Int64? = nil,
        createdAt: Int64,
        updatedAt: Int64
    ) {
        self.callId = callId
        self.callerId = callerId
        self.calleeId = calleeId
        self.callType = callType
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.duration = duration
        self.endReason = endReason
        self.connectedTime = connectedTime
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
