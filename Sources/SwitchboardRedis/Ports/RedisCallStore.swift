import NIOCore
import SwitchboardCore

/// The cluster's ``CallStore``: one ``CallScript`` run per transition, atomic across nodes. The script's
/// replies are read into typed outcomes here, and only here.
struct RedisCallStore: CallStore {
    let scripts: ClusterScripts
    /// How long Redis keeps a ringing call should every timer for it be lost.
    let ringTTL: Duration

    func invite(_ call: Call, then done: @escaping @Sendable (CallStoreResult<InviteOutcome>) -> Void) {
        scripts.invite(call, ringTTL: ringTTL).whenComplete { result in
            done(
                Self.read(result) { reply in
                    switch reply.outcome {
                    case "ok": .ringing(try reply.requireCall(), calleeNode: reply.detail)
                    case "offline": .offline(idIsLive: reply.detail == "live")
                    case "busy": .busy(idIsLive: reply.detail == "live")
                    case "glare": .glare(try reply.requireCall())
                    case "forbidden": .forbidden
                    case "duplicate": .duplicate
                    default: throw ScriptReplyError(outcome: reply.outcome)
                    }
                }
            )
        }
    }

    func apply(
        _ operation: CallOperation,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64,
        then done: @escaping @Sendable (CallStoreResult<TransitionOutcome>) -> Void
    ) {
        scripts.transition(operation.rawValue, from: sender, to: recipient, callId: callId, now: now).whenComplete { result in
            done(
                Self.read(result) { reply in
                    switch reply.outcome {
                    case "accepted": .accepted(try reply.requireCall(), peerNode: reply.node)
                    case "rejected": .ended(try reply.requireCall(), status: .rejected, peerNode: reply.node)
                    case "ended": .ended(try reply.requireCall(), status: .hungUp, peerNode: reply.node)
                    case "found": .found(try reply.requireCall(), peerNode: reply.node)
                    case "connected": .connected(try reply.requireCall(), first: reply.detail == "first")
                    case "no-call": .noCall(message: reply.detail)
                    default: throw ScriptReplyError(outcome: reply.outcome)
                    }
                }
            )
        }
    }

    func expire(callId: String, now: Int64, then done: @escaping @Sendable (CallStoreResult<Call?>) -> Void) {
        scripts.expire(callId: callId, now: now).whenComplete { result in
            done(Self.read(result) { reply in reply.outcome == "ended" ? try reply.requireCall() : nil })
        }
    }

    func abandon(_ user: String, now: Int64, then done: @escaping @Sendable (CallStoreResult<PartedCall?>) -> Void) {
        scripts.abandon(user, now: now).whenComplete { result in
            done(
                Self.read(result) { reply in
                    reply.outcome == "ended" ? PartedCall(call: try reply.requireCall(), peerNode: reply.node) : nil
                }
            )
        }
    }

    func restore(_ call: Call, now: Int64, then done: @escaping @Sendable (CallStoreResult<Bool>) -> Void) {
        scripts.restore(call, ringTTL: ringTTL, now: now).whenComplete { result in
            done(Self.read(result) { $0.outcome == "restored" })
        }
    }

    /// A script's answer read by `outcome`, or why there is none.
    private static func read<Outcome>(
        _ result: Result<ScriptReply, any Error>,
        _ outcome: (ScriptReply) throws -> Outcome
    ) -> CallStoreResult<Outcome> {
        do {
            return .success(try outcome(result.get()))
        } catch {
            return .failure(CallStoreUnavailable("\(error)"))
        }
    }
}

extension ScriptReply {
    /// The node in `detail`: `nil` for "" (online nowhere).
    var node: String? { detail.isEmpty ? nil : detail }

    /// The call the reply must carry.
    func requireCall() throws -> Call {
        guard let call else { throw ScriptReplyError(outcome: outcome) }
        return call
    }
}
