import Synchronization

/// The ``BlockList`` of a single node: every list in memory, at most `maxPerUser` entries each.
package final class InProcessBlockList: BlockList {
    private let lists = Mutex([String: Set<String>]())
    let maxPerUser: Int

    package init(maxPerUser: Int) {
        self.maxPerUser = maxPerUser
    }

    /// Whether `recipient` blocked `sender`, at once.
    package func contains(_ sender: String, blockedBy recipient: String) -> Bool {
        lists.withLock { $0[recipient]?.contains(sender) ?? false }
    }

    package func isBlocked(
        _ sender: String,
        by recipient: String,
        then done: @escaping @Sendable (Result<Bool, BlockListUnavailable>) -> Void
    ) {
        done(.success(contains(sender, blockedBy: recipient)))
    }

    package func block(_ user: String, by owner: String) -> BlockChange {
        lists.withLock { lists in
            var list = lists[owner] ?? []
            guard list.contains(user) || list.count < maxPerUser else { return .full }
            list.insert(user)
            lists[owner] = list
            return .blocked
        }
    }

    package func unblock(_ user: String, by owner: String) {
        lists.withLock { lists in
            lists[owner]?.remove(user)
            if lists[owner]?.isEmpty == true { lists[owner] = nil }
        }
    }

    package func blocked(by owner: String) -> [String] {
        lists.withLock { ($0[owner] ?? []).sorted() }
    }
}
