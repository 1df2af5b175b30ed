/// Who blocked whom (PROTOCOL.md §10): each user keeps their own list, which refuses invites and direct
/// messages from the users on it. In-process on a single node (``InProcessBlockList``), one Redis set per
/// user in a cluster, so that a change is seen by every node once it has answered.
package protocol BlockList: Sendable {
    /// Whether `recipient` blocked `sender`; answers once, perhaps at once on the caller's thread.
    func isBlocked(
        _ sender: String,
        by recipient: String,
        then done: @escaping @Sendable (Result<Bool, BlockListUnavailable>) -> Void
    )

    /// Adds `user` to `owner`'s list (nothing if it is there already).
    func block(_ user: String, by owner: String) async throws(BlockListUnavailable) -> BlockChange

    /// Removes `user` from `owner`'s list (nothing if it is not there).
    func unblock(_ user: String, by owner: String) async throws(BlockListUnavailable)

    /// The users `owner` blocked, sorted.
    func blocked(by owner: String) async throws(BlockListUnavailable) -> [String]
}

/// What adding to a list did.
package enum BlockChange: Sendable, Equatable {
    /// The user is on the list.
    case blocked
    /// The list holds its maximum already: nothing was added.
    case full
}

/// The block list could not be asked (in cluster mode: Redis is unreachable).
package struct BlockListUnavailable: Error, Sendable, Equatable {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}
