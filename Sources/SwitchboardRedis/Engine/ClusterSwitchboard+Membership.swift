import NIOCore
import SwitchboardCore

extension ClusterSwitchboard {
    /// After Redis came back (perhaps emptied by a restart): registers every session of this node again
    /// and writes back the calls of its users that Redis lost. A user who connected elsewhere meanwhile
    /// keeps that newer session; this node's is closed as replaced.
    func restoreAfterReconnect() {
        let now = clock.nowMilliseconds()
        let (sessions, calls) = state.withLock { (Array($0.sessions.values), $0.book.allCalls) }
        for session in sessions {
            scripts.restore(session.user, now: now).whenSuccess { [self] holder in
                guard holder != nil else { return }
                let replaced = state.withLock { state -> Session? in
                    guard state.isCurrent(session) else { return nil }
                    state.sessions[session.user] = nil
                    state.lanes[session.id] = nil
                    return session
                }
                if let replaced { closeReplaced(replaced) }
            }
        }
        for call in calls {
            _ = scripts.restore(call, ringTTL: ringTTL, now: now)
        }
        logger.info("presence restored", metadata: ["sessions": "\(sessions.count)", "calls": "\(calls.count)"])
    }
}
