import SwitchboardProto

/// What the engine needs of a cluster (Redis in SwitchboardRedis): cluster-wide presence, the shared call
/// store and delivery to other nodes. A single node has none of them.
///
/// A class: the engine reads it on every relayed message (`guard let cluster`), and a struct of five
/// existentials and a closure would be copied, six retains and six releases, each time.
package final class ClusterPorts: Sendable {
    package let presence: any PresenceDirectory
    package let calls: any CallStore
    package let delivery: any RemoteDelivery
    /// Signals kept for users away from their call (PROTOCOL.md §8), cluster-wide.
    package let kept: any KeptSignalStore
    /// Who blocked whom, cluster-wide.
    package let blocks: any BlockList
    /// Whether the backend is reachable (the node's readiness).
    package let isReady: @Sendable () -> Bool

    package init(
        presence: any PresenceDirectory,
        calls: any CallStore,
        delivery: any RemoteDelivery,
        kept: any KeptSignalStore,
        blocks: any BlockList = InProcessBlockList(maxPerUser: 1000),
        isReady: @escaping @Sendable () -> Bool
    ) {
        self.presence = presence
        self.calls = calls
        self.delivery = delivery
        self.kept = kept
        self.blocks = blocks
        self.isReady = isReady
    }
}

/// Where every user's live session is, cluster-wide. Answers may come later, on another thread.
package protocol PresenceDirectory: Sendable {
    /// Records that `user`'s live session is on this node.
    func register(_ user: String, now: Int64, then done: @escaping @Sendable (Result<Registration, PresenceUnavailable>) -> Void)

    /// Registers `user` again after the directory was unreachable (it may have lost everything); answers
    /// the other node that holds the user meanwhile, if any.
    func restore(_ user: String, now: Int64, then done: @escaping @Sendable (Result<String?, PresenceUnavailable>) -> Void)

    /// Removes `user`'s entry if it still names this node; `done` runs once that was tried.
    func unregister(_ user: String, now: Int64, then done: @escaping @Sendable () -> Void)

    /// The node holding `user`'s live session, or `nil`.
    func lookup(_ user: String, then done: @escaping @Sendable (Result<String?, PresenceUnavailable>) -> Void)
}

/// What registering a session found.
package struct Registration: Sendable, Equatable {
    /// The other node that held the user's session before, if any.
    package var previousNode: String?
    /// The call the user is in, if any.
    package var call: Call?

    package init(previousNode: String?, call: Call?) {
        self.previousNode = previousNode
        self.call = call
    }
}

/// The presence directory could not be asked.
package struct PresenceUnavailable: Error, Sendable, Equatable {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}

/// Carries messages to users of other nodes, in order per destination node.
package protocol RemoteDelivery: Sendable {
    /// Sends `message` for `user` to `node`, with the change to the call it carries. If it does not get
    /// there, the engine is told (``Switchboard/undelivered(_:for:at:effect:isRetry:because:)``) with
    /// why and the message, decoded again from what was kept.
    func send(_ message: ChatMessage, to user: String, at node: String, effect: CallEffect, isRetry: Bool)

    /// Tells `node` that `user`'s session there was replaced by a newer one here.
    func replace(_ user: String, at node: String)
}

/// Why a message did not reach another node.
package enum RemoteDeliveryFailure: Sendable, Equatable {
    /// Nobody received it there (the node is gone, or away for the whole retry age).
    case noReceiver
    /// The cluster backend did not take it.
    case unreachable
    /// What is kept for that node is full: this message gave way.
    case bufferFull
}

/// The change to a call a delivered message carries, so that the receiving node's copy of the call follows.
package enum CallEffect: Sendable, Equatable {
    case none
    /// The call now stands as given (created by an invite, or accepted).
    case update(Call)
    /// The call ended.
    case end(callId: String)
}
