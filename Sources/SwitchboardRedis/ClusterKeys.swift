/// The Redis keys and channels of a cluster (PROTOCOL.md §6; the README lists them for operators).
///
/// Every key lives under one prefix (`webrtc:`). The Lua scripts build the same names from the prefix,
/// so this type and the scripts must agree: `ClusterScriptsTests` checks them against a real server.
package struct ClusterKeys: Sendable, Hashable {
    /// The prefix of every key, `webrtc:`.
    package let prefix: String
    /// The pub/sub channel (`redis.channels.webrtc_signals`): every node subscribes to it and delivers
    /// what it carries to its own users; a node's inbox is this name + `:` + node id.
    package let signalsChannel: String

    package init(prefix: String = "webrtc:", signalsChannel: String = "webrtc:signals") {
        self.prefix = prefix
        self.signalsChannel = signalsChannel
    }

    /// Hash: user id → node id of the user's live session.
    package var presence: String { prefix + "presence" }
    /// Sorted set: node id → last heartbeat (unix ms).
    package var nodes: String { prefix + "nodes" }
    /// Set: the users a node registered (what the reaper removes when the node dies).
    package func nodeUsers(_ node: String) -> String { prefix + "node:" + node + ":users" }
    /// Hash: one call ringing or active (caller, callee, call_type, state, created_at, started_at,
    /// connected_at).
    package func call(_ callId: String) -> String { prefix + "call:" + callId }
    /// String: the id of the call a user is in.
    package func userCall(_ user: String) -> String { prefix + "user-call:" + user }
    /// Hash: a user away from their call within the reconnect grace (`call`: its id, `bytes`: what is
    /// kept); expires with the grace (PROTOCOL.md §8).
    package func away(_ user: String) -> String { prefix + "away:" + user }
    /// List: the signals kept for a user who is away (serialized `ChatMessage`s, oldest first), at most
    /// 256 and 1 MiB; expires with ``away(_:)``.
    package func kept(_ user: String) -> String { prefix + "kept:" + user }
    /// Set: the users a user blocked (PROTOCOL.md §10), at most `blocks.max_per_user` of them.
    package func blocks(_ user: String) -> String { prefix + "blocks:" + user }
    /// Pub/sub channel: messages for the users of one node. `PUBLISH` to it answers 0 while that
    /// node's subscriber is away, which the sender detects.
    package func inbox(_ node: String) -> String { signalsChannel + ":" + node }
}
