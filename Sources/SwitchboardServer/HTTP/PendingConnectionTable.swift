/// The bookkeeping behind the pending-connection limits (PROTOCOL.md §9): every connection that has
/// not upgraded to WebSocket, counted per client address and overall. A connection is *idle* while it
/// waits for a request head (from accept, and again after each response); a newcomer over a limit
/// takes the place of the oldest idle connection of its address (per-address limit) or of all
/// (total), so idle sockets never keep a newcomer out. Busy connections (a request being answered)
/// are never evicted; with none idle the newcomer is refused.
///
/// A value type without locking, generic over what is closed (a channel in the node, anything in
/// tests); ``PendingConnectionRegistry`` shares one between event loops.
struct PendingConnectionTable<Key: Hashable & Sendable, Connection> {
    /// A connection's handle in the table.
    typealias ID = UInt64

    /// The outcome of ``admit(_:key:)``.
    enum Admission {
        /// Counted as `id`; `evicted` must be closed (they have left the table already).
        case admitted(ID, evicted: [Connection])
        /// Over a limit with nothing idle to evict: close the newcomer.
        case refused
    }

    fileprivate struct Entry {
        let key: Key?
        let connection: Connection
        var isIdle: Bool
    }

    let limits: PendingConnectionLimits
    private var entries: [ID: Entry] = [:]
    private var countByKey: [Key: Int] = [:]
    private var idle = IdleOrder<ID>()
    private var idleByKey: [Key: IdleOrder<ID>] = [:]
    private var nextID: ID = 1

    init(limits: PendingConnectionLimits) {
        self.limits = limits
    }

    /// Connections counted now.
    var count: Int { entries.count }

    /// Connections counted now under `key`.
    func count(for key: Key) -> Int { countByKey[key] ?? 0 }

    /// Idle connections now.
    var idleCount: Int { idle.count }

    /// Counts a new connection from `key` (`nil`: counted in the total only), idle until its first
    /// request head, making room by evicting the oldest idle connection of its key and then of all.
    mutating func admit(_ connection: Connection, key: Key?) -> Admission {
        var evicted: [Connection] = []
        if let key, count(for: key) >= limits.perAddress {
            guard let victim = idleByKey[key]?.oldest else { return .refused }
            evicted.append(remove(victim)!)
        }
        // A per-address eviction has freed a slot of the total as well.
        if evicted.isEmpty, entries.count >= limits.total {
            guard let victim = idle.oldest else { return .refused }
            evicted.append(remove(victim)!)
        }
        return insert(connection, key: key, evicted: evicted)
    }

    private mutating func insert(_ connection: Connection, key: Key?, evicted: [Connection]) -> Admission {
        let id = nextID
        nextID += 1
        entries[id] = Entry(key: key, connection: connection, isIdle: true)
        if let key {
            countByKey[key, default: 0] += 1
            idleByKey[key, default: IdleOrder()].append(id)
        }
        idle.append(id)
        return .admitted(id, evicted: evicted)
    }

    /// `id` is answering a request: it cannot be evicted.
    mutating func markBusy(_ id: ID) {
        guard var entry = entries[id], entry.isIdle else { return }
        entry.isIdle = false
        entries[id] = entry
        idle.remove(id)
        if let key = entry.key { idleByKey[key]?.remove(id) }
    }

    /// `id` waits for a request head again: it is now the newest idle connection.
    mutating func markIdle(_ id: ID) {
        guard var entry = entries[id], !entry.isIdle else { return }
        entry.isIdle = true
        entries[id] = entry
        idle.append(id)
        if let key = entry.key { idleByKey[key, default: IdleOrder()].append(id) }
    }

    /// Stops counting `id` (closed, evicted or upgraded); returns its connection, `nil` if it was
    /// not counted (any more).
    @discardableResult
    mutating func remove(_ id: ID) -> Connection? {
        guard let entry = entries.removeValue(forKey: id) else { return nil }
        idle.remove(id)
        if let key = entry.key {
            let remaining = (countByKey[key] ?? 1) - 1
            countByKey[key] = remaining > 0 ? remaining : nil
            idleByKey[key]?.remove(id)
            if idleByKey[key]?.count == 0 { idleByKey[key] = nil }
        }
        return entry.connection
    }

    /// The idle connections' ids, oldest first (tests).
    var idleIDs: [ID] { idle.ordered }
}

extension PendingConnectionTable.Admission: Sendable where Connection: Sendable {}
extension PendingConnectionTable: Sendable where Connection: Sendable {}
extension PendingConnectionTable.Entry: Sendable where Connection: Sendable {}
