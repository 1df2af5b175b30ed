/// A call between two users, from invite to its end.
package struct Call: Sendable, Equatable {
    /// Ringing until the callee accepts; active after.
    package enum State: Sendable, Equatable {
        case ringing
        case active
    }

    package let id: String
    package let caller: String
    package let callee: String
    package let callType: CallType
    package internal(set) var state: State
    /// When the invite was accepted by the server (unix ms).
    package let createdAt: Int64
    /// When the callee accepted (unix ms).
    package internal(set) var startedAt: Int64?
    /// When a party first reported its media connection up (`call-connected`, unix ms).
    package internal(set) var connectedAt: Int64?

    package init(
        id: String,
        caller: String,
        callee: String,
        callType: CallType,
        createdAt: Int64,
        state: State = .ringing,
        startedAt: Int64? = nil,
        connectedAt: Int64? = nil
    ) {
        self.id = id
        self.caller = caller
        self.callee = callee
        self.callType = callType
        self.state = state
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.connectedAt = connectedAt
    }

    /// Whether `user` is one of the two parties.
    package func involves(_ user: String) -> Bool { user == caller || user == callee }

    /// The party that is not `user`.
    package func peer(of user: String) -> String { user == caller ? callee : caller }

    /// The record of this call as it stands, or as it ended with `status` at `now`.
    package func record(status: CallStatus, endedAt: Int64? = nil, endReason: String? = nil, now: Int64) -> CallRecord {
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
            connectedTime: connectedAt,
            createdAt: createdAt,
            updatedAt: now
        )
    }
}
