import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// The ``InvitePermission`` of `hooks.invite_url` (PROTOCOL.md §10): a signed POST of
/// `{"event":"call-permission","caller","callee","callId","callType"}`, answered by its deadline.
///
/// A 2xx `{"allow":true}` allows, `{"allow":false}` or a 403 denies; anything else, no answer within
/// `hooks.invite_timeout`, or more than `hooks.invite_max_in_flight` questions open at once is an error,
/// which `hooks.invite_on_error` turns into allow or deny. Allow and deny are cached per (caller,
/// callee) for `hooks.invite_cache_ttl`; errors never are.
final class InvitePermissionHook: InvitePermission {
    /// What the backend's answer says.
    enum Verdict: Equatable {
        case allow
        case deny
        case error(String)
    }

    private let client: HookClient
    private let url: String
    private let timeout: Duration
    private let onErrorAllows: Bool
    private let maxInFlight: Int
    private let inFlight = Atomic<Int>(0)
    private let cache: Mutex<PermissionCache>?
    private let clock: SwitchboardClock
    private let metrics: HookMetrics
    private let logger: Logger

    init(
        client: HookClient,
        configuration: SwitchboardConfiguration.Hooks,
        url: String,
        metrics: HookMetrics,
        clock: SwitchboardClock = .system,
        logger: Logger
    ) {
        self.client = client
        self.url = url
        timeout = configuration.inviteTimeout
        onErrorAllows = configuration.inviteOnErrorAllows
        maxInFlight = configuration.inviteMaxInFlight
        let ttl = configuration.inviteCacheTTL.wholeMilliseconds
        cache = ttl > 0 ? Mutex(PermissionCache(ttl: ttl)) : nil
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    func ask(_ question: InviteQuestion, then done: @escaping @Sendable (Bool) -> Void) {
        let now = Int64(clock.monotonicNanoseconds() / 1_000_000)
        if let allowed = cache?.withLock({ $0.answer(caller: question.caller, callee: question.callee, now: now) }) {
            metrics.cached.increment()
            return done(allowed)
        }
        guard inFlight.wrappingAdd(1, ordering: .relaxed).newValue <= maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            return answer(.error("more than hooks.invite_max_in_flight questions open"), question, now: now, done)
        }
        let body: JSONObject = [
            "event": "call-permission", "caller": .string(question.caller), "callee": .string(question.callee),
            "callId": .string(question.callId), "callType": .string(question.callType.wireName),
        ]
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        client.post(url, body: Array(JSONValue.object(body).serialized().utf8), deadline: deadline).whenComplete {
            [self] result in
            inFlight.subtract(1, ordering: .relaxed)
            let verdict: Verdict
            switch result {
            case .success(let reply):
                verdict = Self.verdict(status: reply.status, body: reply.body.map { Array($0.readableBytesView) })
            case .failure(let error): verdict = .error("\(error)")
            }
            answer(verdict, question, now: Int64(clock.monotonicNanoseconds() / 1_000_000), done)
        }
    }

    /// Counts, caches and logs `verdict`, and answers allow or deny.
    private func answer(_ verdict: Verdict, _ question: InviteQuestion, now: Int64, _ done: @Sendable (Bool) -> Void) {
        switch verdict {
        case .allow, .deny:
            let allowed = verdict == .allow
            (allowed ? metrics.allowed : metrics.denied).increment()
            cache?.withLock { $0.store(allowed, caller: question.caller, callee: question.callee, now: now) }
            done(allowed)
        case .error(let why):
            metrics.errors.increment()
            logger.warning(
                "invite permission hook failed",
                metadata: [
                    "call_id": "\(question.callId)", "error": "\(why)",
                    "invite_on_error": "\(onErrorAllows ? "allow" : "deny")",
                ]
            )
            done(onErrorAllows)
        }
    }

    /// What an answer with `status` and `body` says (PROTOCOL.md §10).
    static func verdict(status: Int, body: [UInt8]?) -> Verdict {
        if status == 403 { return .deny }
        guard (200..<300).contains(status) else { return .error("status \(status)") }
        guard let body, let json = try? JSONValue(parsing: body), let allow = json["allow"]?.boolValue else {
            return .error("a 2xx answer without a boolean \"allow\"")
        }
        return allow ? .allow : .deny
    }
}
