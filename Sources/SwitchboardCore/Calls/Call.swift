/// A call between two users, from invite to its end.
public struct Call: Sendable, Equatable {
    /// Ringing until the callee accepts; active after.
    public enum State: Sendable, Equatable {
        case ringing
        case active
    }

    public let id: String
    public let caller: String
    public let callee: String
    public let callType: CallType
    public internal(set) var state: State
    /// When the invite was accepted by the server (unix ms).
    public let createdAt: Int64
    /// When the callee accepted (unix ms).
    public internal(set) var startedAt: Int64?

    public init(
        id: String,
        caller: String,
        callee: String,
        callType: CallType,
        createdAt: Int64,
        state: State = .ringing,
        startedAt: Int64? = nil
    ) {
        self.id = id
        self.caller = caller
        self.callee = callee
        self.callType = callType
        self.state = state
        self.createdAt = createdAt
        self.startedAt = startedAt
    }

    /// Whether `user` is one of the two parties.
    public func involves(_ user: String) -> Bool { user == caller || user == callee }

    /// The party that is not `user`.
    public func peer(of user: String) -> String { user == caller ? callee : caller }

    /// The record of this call as it stands, or as it ended with `status` at `now`.
    public func record(status: CallStatus, endedAt: Int64? = nil, endReason: String? = nil, now: Int64) -> CallRecord {
        let duration = startedAt.flatMap { start in endedAt.map { end in Int(max(0, end - start) / 1000) } } ?? 0
        return CallRecord(
            callId: id,
            callerId: caller,
            calleeId: callee,
            callType: callType,
            status: status,
            startTime: startedAt,
            endTime: endedAt,
            duration: duration,
            endReason: endReason,
            createdAt: createdAt,
            updatedAt: now
        )
    }
}
