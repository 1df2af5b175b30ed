import NIOCore
import RedisWire
import SwitchboardBasics
import SwitchboardCore

/// The cluster's Redis operations for one node, as typed calls: presence, heartbeats and call
/// transitions (each one atomic script), and presence lookups.
struct ClusterScripts: Sendable {
    static let presenceScript = RedisScript(PresenceScript.source)
    static let callScript = RedisScript(CallScript.source)

    let redis: any RedisCommandSender
    let keys: ClusterKeys
    let node: String

    /// The commands that cache both scripts on the server (sent after each connect).
    static var loadCommands: [[RESPArgument]] {
        [presenceScript.loadCommand, callScript.loadCommand, RedisKeptSignals.script.loadCommand]
    }

    // MARK: Presence

    /// Records that `user`'s live session is on this node: the node that held it before (if another),
    /// and the call the user is in.
    func register(_ user: String, now: Int64) -> EventLoopFuture<(previous: String?, call: Call?)> {
        presence("register", now: now, [RESPArgument(user)]).flatMapThrowing { reply in
            guard let items = reply.array, items.count == 2, let previous = items[0].string else {
                throw ScriptReplyError(reply: reply)
            }
            let fields = items[1].array ?? []
            let call = fields.count == 7 ? try ScriptReply.call(fields, reply: reply) : nil
            return (previous.isEmpty || previous == node ? nil : previous, call)
        }
    }

    /// Registers `user` again after a reconnect; answers the other node that holds the user meanwhile.
    func restore(_ user: String, now: Int64) -> EventLoopFuture<String?> {
        presence("restore", now: now, [RESPArgument(user)]).map { reply in
            guard let holder = reply.array?.first?.string, !holder.isEmpty, holder != node else { return nil }
            return holder
        }
    }

    /// Removes `user`'s presence if it still names this node.
    func unregister(_ user: String, now: Int64) -> EventLoopFuture<RESPValue> {
        presence("unregister", now: now, [RESPArgument(user)])
    }

    /// Records this node's heartbeat and reaps nodes silent since `deadline`: answers whether this node
    /// had been missing (its users must register again), and the users the dead nodes left in calls.
    func beat(now: Int64, deadline: Int64) -> EventLoopFuture<(wasMissing: Bool, orphans: [String])> {
        presence("beat", now: now, [RESPArgument(deadline)]).map { reply in
            let items = reply.array ?? []
            return (items.first?.integer == 1, items.dropFirst().compactMap(\.string))
        }
    }

    /// Reaps what an earlier run of this node id left behind; answers the users it left in calls.
    func reset(now: Int64) -> EventLoopFuture<[String]> {
        presence("reset", now: now, []).map(Self.users)
    }

    /// Takes this node's users out of presence and marks the node dead for the others' reapers.
    func leave(now: Int64) -> EventLoopFuture<RESPValue> {
        presence("leave", now: now, [])
    }

    /// The node holding `user`'s live session, or `nil`.
    func lookup(_ user: String) -> EventLoopFuture<String?> {
        redis.send(["HGET", RESPArgument(keys.presence), RESPArgument(user)]).map { $0.string }
    }

    // MARK: Calls

    /// Starts ringing a call unless the callee is offline or a party is busy.
    func invite(_ call: Call, ringTTL: Duration) -> EventLoopFuture<ScriptReply> {
        calls(
            "invite",
            now: call.createdAt,
            [
                RESPArgument(call.id), RESPArgument(call.caller), RESPArgument(call.callee),
                RESPArgument(call.callType.rawValue), RESPArgument(Self.milliseconds(ringTTL)),
            ]
        )
    }

    /// Applies `accept`, `reject`, `hangup` or `lookup` from `sender` to the call with `recipient`.
    func transition(
        _ op: String,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64
    )
        -> EventLoopFuture<ScriptReply>
    {
        calls(op, now: now, [RESPArgument(sender), RESPArgument(recipient), RESPArgument(callId ?? "")])
    }

    /// Ends the call if it is still ringing.
    func expire(callId: String, now: Int64) -> EventLoopFuture<ScriptReply> {
        calls("expire", now: now, [RESPArgument(callId)])
    }

    /// Ends `user`'s call if the user has no session anywhere.
    func abandon(_ user: String, now: Int64) -> EventLoopFuture<ScriptReply> {
        calls("abandon", now: now, [RESPArgument(user)])
    }

    /// Writes a call this node knows of back, if Redis lost it.
    func restore(_ call: Call, ringTTL: Duration, now: Int64) -> EventLoopFuture<ScriptReply> {
        calls(
            "restore",
            now: now,
            [
                RESPArgument(call.id), RESPArgument(call.caller), RESPArgument(call.callee),
                RESPArgument(call.callType.rawValue), RESPArgument(call.state == .active ? "active" : "ringing"),
                RESPArgument(call.createdAt), RESPArgument(call.startedAt.map(String.init) ?? ""),
                RESPArgument(Self.milliseconds(ringTTL)), RESPArgument(call.connectedAt.map(String.init) ?? ""),
            ]
        )
    }

    // MARK: Running scripts

    private func presence(_ op: String, now: Int64, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        Self.presenceScript.run(
            on: redis,
            [RESPArgument(keys.prefix), RESPArgument(op), RESPArgument(node), RESPArgument(now)] + arguments
        )
    }

    private func calls(_ op: String, now: Int64, _ arguments: [RESPArgument]) -> EventLoopFuture<ScriptReply> {
        Self.callScript.run(on: redis, [RESPArgument(keys.prefix), RESPArgument(op), RESPArgument(now)] + arguments)
            .flatMapThrowing { try ScriptReply($0) }
    }

    /// `duration` in whole milliseconds, at least 1 (Redis TTLs).
    private static func milliseconds(_ duration: Duration) -> Int64 {
        max(1, duration.wholeMilliseconds)
    }

    private static func users(_ reply: RESPValue) -> [String] {
        (reply.array ?? []).compactMap(\.string)
    }
}
