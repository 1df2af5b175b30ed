import DequeModule

/// The backend's allow and deny answers per (caller, callee), each kept for `ttl`
/// (`hooks.invite_cache_ttl`), at most `capacity` of them: beyond, the oldest gives way. Errors are
/// never kept. A value type, used under its owner's lock.
struct PermissionCache {
    private struct Pair: Hashable {
        var caller: String
        var callee: String
    }

    private struct Entry {
        var allowed: Bool
        var expiresAt: Int64
    }

    private var entries: [Pair: Entry] = [:]
    /// Pairs in the order they were stored; an entry stored again is found here twice, the older one stale.
    private var order = Deque<(pair: Pair, expiresAt: Int64)>()
    let ttl: Int64
    let capacity: Int

    /// A cache of answers valid for `ttl` milliseconds.
    init(ttl milliseconds: Int64, capacity: Int = 10_000) {
        ttl = milliseconds
        self.capacity = capacity
    }

    var count: Int { entries.count }

    /// The answer kept for `caller` calling `callee` at `now` (monotonic ms), if any.
    func answer(caller: String, callee: String, now: Int64) -> Bool? {
        guard let entry = entries[Pair(caller: caller, callee: callee)], entry.expiresAt > now else { return nil }
        return entry.allowed
    }

    /// Keeps `allowed` for `caller` calling `callee` from `now` on.
    mutating func store(_ allowed: Bool, caller: String, callee: String, now: Int64) {
        dropExpired(now: now)
        let pair = Pair(caller: caller, callee: callee)
        while entries[pair] == nil, entries.count >= capacity, let oldest = order.popFirst() {
            if entries[oldest.pair]?.expiresAt == oldest.expiresAt { entries[oldest.pair] = nil }
        }
        let expiresAt = now + ttl
        entries[pair] = Entry(allowed: allowed, expiresAt: expiresAt)
        order.append((pair, expiresAt))
        // Stale order entries (pairs stored again) are at most as many as the live ones.
        if order.count > 2 * capacity { order.removeAll { entries[$0.pair]?.expiresAt != $0.expiresAt } }
    }

    /// Forgets what expired by `now`: the oldest are first, all entries living equally long.
    private mutating func dropExpired(now: Int64) {
        while let oldest = order.first, oldest.expiresAt <= now {
            order.removeFirst()
            if entries[oldest.pair]?.expiresAt == oldest.expiresAt { entries[oldest.pair] = nil }
        }
    }
}
