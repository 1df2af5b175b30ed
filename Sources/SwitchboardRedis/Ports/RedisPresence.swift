import NIOCore
import SwitchboardCore

/// The cluster's ``PresenceDirectory``: the `webrtc:presence` hash, kept by ``PresenceScript``.
struct RedisPresence: PresenceDirectory {
    let scripts: ClusterScripts

    func register(_ user: String, now: Int64, then done: @escaping @Sendable (Result<Registration, PresenceUnavailable>) -> Void)
    {
        scripts.register(user, now: now).whenComplete { result in
            done(result.map { Registration(previousNode: $0.previous, call: $0.call) }.mapError(Self.unavailable))
        }
    }

    func restore(_ user: String, now: Int64, then done: @escaping @Sendable (Result<String?, PresenceUnavailable>) -> Void) {
        scripts.restore(user, now: now).whenComplete { done($0.mapError(Self.unavailable)) }
    }

    func unregister(_ user: String, now: Int64, then done: @escaping @Sendable () -> Void) {
        scripts.unregister(user, now: now).whenComplete { _ in done() }
    }

    func lookup(_ user: String, then done: @escaping @Sendable (Result<String?, PresenceUnavailable>) -> Void) {
        scripts.lookup(user).whenComplete { done($0.mapError(Self.unavailable)) }
    }

    private static func unavailable(_ error: any Error) -> PresenceUnavailable {
        PresenceUnavailable("\(error)")
    }
}
