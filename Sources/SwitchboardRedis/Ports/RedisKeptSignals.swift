import NIOCore
import RedisWire
import SwitchboardBasics
import SwitchboardCore
import SwitchboardProto

/// The cluster's ``KeptSignalStore``: ``KeptScript`` on the keys `away:<user>` and `kept:<user>`, so that
/// a user finds what was kept for them on whichever node they come back to. Its replies are read into
/// typed outcomes here, and only here.
struct RedisKeptSignals: KeptSignalStore {
    static let script = RedisScript(KeptScript.source)

    let redis: any RedisCommandSender
    let keys: ClusterKeys
    /// How long a user's kept signals last (`calls.reconnect_grace`).
    let grace: Duration
    let limits: KeptSignalLimits

    func away(_ user: String, callId: String, then done: @escaping @Sendable () -> Void) {
        run("away", user, [RESPArgument(callId), RESPArgument(graceMilliseconds)]).whenComplete { _ in done() }
    }

    func keep(
        _ message: ChatMessage,
        for user: String,
        callId: String,
        then done: @escaping @Sendable (Result<KeepOutcome, KeptSignalsUnavailable>) -> Void
    ) {
        guard let bytes = try? message.serializedBytes() as [UInt8] else {
            return done(.failure(KeptSignalsUnavailable("message not serializable")))
        }
        let arguments = [
            RESPArgument(callId), RESPArgument(graceMilliseconds), RESPArgument(limits.count),
            RESPArgument(limits.bytes), RESPArgument(bytes),
        ]
        run("keep", user, arguments).whenComplete { result in
            done(
                Self.read(result) { reply in
                    guard let items = reply.array, let outcome = items.first?.string else { return nil }
                    switch outcome {
                    case "kept": return .kept(displaced: items.dropFirst().compactMap(Self.message))
                    case "present": return items.count == 2 ? items[1].string.map { .present(node: $0) } : nil
                    case "not-away": return .notAway
                    default: return nil
                    }
                }
            )
        }
    }

    func resume(_ user: String, then done: @escaping @Sendable (Result<Resumption, KeptSignalsUnavailable>) -> Void) {
        run("resume", user, []).whenComplete { result in
            done(
                Self.read(result) { reply in
                    guard let items = reply.array, items.count == 3, let marked = items[0].string,
                        let fields = items[1].array, let messages = items[2].array
                    else { return nil }
                    let call = fields.count == 7 ? try? ScriptReply.call(fields, reply: reply) : nil
                    return Resumption(wasAway: marked == "1", call: call, kept: messages.compactMap(Self.message))
                }
            )
        }
    }

    func discard(_ user: String) {
        _ = run("discard", user, [])
    }

    private var graceMilliseconds: Int64 { max(1, grace.wholeMilliseconds) }

    private func run(_ op: String, _ user: String, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        Self.script.run(on: redis, [RESPArgument(keys.prefix), RESPArgument(op), RESPArgument(user)] + arguments)
    }

    private static func message(_ value: RESPValue) -> ChatMessage? {
        value.bytes.flatMap { try? ChatMessage(serializedBytes: $0) }
    }

    /// A reply read by `outcome` (`nil`: not understood), or why there is none.
    private static func read<Outcome>(
        _ result: Result<RESPValue, any Error>,
        _ outcome: (RESPValue) -> Outcome?
    ) -> Result<Outcome, KeptSignalsUnavailable> {
        switch result {
        case .success(let reply):
            guard let read = outcome(reply) else { return .failure(KeptSignalsUnavailable("unexpected reply \(reply)")) }
            return .success(read)
        case .failure(let error):
            return .failure(KeptSignalsUnavailable("\(error)"))
        }
    }
}
