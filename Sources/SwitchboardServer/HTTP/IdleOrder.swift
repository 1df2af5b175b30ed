/// Ids in the order they were appended, with O(1) append, removal of any id and access to the oldest:
/// a doubly linked list threaded through a dictionary.
struct IdleOrder<ID: Hashable>: Sendable where ID: Sendable {
    private struct Links: Sendable {
        var previous: ID?
        var next: ID?
    }

    private var links: [ID: Links] = [:]
    private(set) var oldest: ID?
    private var newest: ID?

    /// How many ids are in the order.
    var count: Int { links.count }

    /// Whether `id` is in the order.
    func contains(_ id: ID) -> Bool { links[id] != nil }

    /// Appends `id` as the newest; an id already present moves to the end.
    mutating func append(_ id: ID) {
        remove(id)
        links[id] = Links(previous: newest, next: nil)
        if let newest { links[newest]?.next = id } else { oldest = id }
        newest = id
    }

    /// Removes `id`; a no-op when it is absent.
    mutating func remove(_ id: ID) {
        guard let entry = links.removeValue(forKey: id) else { return }
        if let previous = entry.previous { links[previous]?.next = entry.next } else { oldest = entry.next }
        if let next = entry.next { links[next]?.previous = entry.previous } else { newest = entry.previous }
    }

    /// The ids from oldest to newest (for tests and diagnostics; O(n)).
    var ordered: [ID] {
        var result: [ID] = []
        var cursor = oldest
        while let id = cursor {
            result.append(id)
            cursor = links[id]?.next
        }
        return result
    }
}
