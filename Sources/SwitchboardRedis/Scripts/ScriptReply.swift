import RedisWire
import SwitchboardCore

/// A reply of ``CallScript`` or ``PresenceScript``, read into domain values.
struct ScriptReply: Sendable {
    /// The first element: the outcome (`ok`, `busy`, `ended`, …).
    let outcome: String
    /// The second element when it is a string: a node id ("" = none), or a message.
    let detail: String
    /// The call whose fields follow outcome and detail, if any.
    let call: Call?

    init(_ reply: RESPValue) throws(ScriptReplyError) {
        guard let items = reply.array, let outcome = items.first?.string else {
            throw ScriptReplyError(reply: reply)
        }
        self.outcome = outcome
        self.detail = items.count > 1 ? items[1].string ?? "" : ""
        self.call = items.count >= 9 ? try Self.call(Array(items[2..<min(items.count, 10)]), reply: reply) : nil
    }

    /// A call from its fields `id, caller, callee, call_type, state, created_at, started_at`, and
    /// `connected_at` when the script gives it.
    static func call(_ fields: [RESPValue], reply: RESPValue) throws(ScriptReplyError) -> Call {
        let strings = fields.map { $0.string ?? "" }
        guard (7...8).contains(strings.count), let typeNumber = Int(strings[3]), let callType = CallType(rawValue: typeNumber),
            let createdAt = Int64(strings[5])
        else { throw ScriptReplyError(reply: reply) }
        return Call(
            id: strings[0],
            caller: strings[1],
            callee: strings[2],
            callType: callType,
            createdAt: createdAt,
            state: strings[4] == "active" ? .active : .ringing,
            startedAt: Int64(strings[6]),
            connectedAt: strings.count == 8 ? Int64(strings[7]) : nil
        )
    }
}

/// A script answered something this node does not understand (a different version of the node).
struct ScriptReplyError: Error, CustomStringConvertible {
    let description: String

    init(reply: RESPValue) {
        description = "unexpected script reply \(reply)"
    }

    init(outcome: String) {
        description = "unexpected script outcome \(outcome)"
    }
}
