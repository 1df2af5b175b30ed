import NIOCore
import Synchronization

/// The node's connections that have not upgraded to WebSocket, shared by every event loop and
/// listener: a ``PendingConnectionTable`` behind a lock. Evicted connections are closed here, outside
/// the lock (closing hops to the victim's own event loop).
final class PendingConnectionRegistry: Sendable {
    typealias ID = PendingConnectionTable<IPAddress, any Channel>.ID

    /// The limits in force.
    let limits: PendingConnectionLimits
    private let table: Mutex<PendingConnectionTable<IPAddress, any Channel>>
    private let evictions = Atomic<Int>(0)
    private let refusals = Atomic<Int>(0)
    private let timeouts = Atomic<Int>(0)

    init(limits: PendingConnectionLimits) {
        self.limits = limits
        self.table = Mutex(PendingConnectionTable(limits: limits))
    }

    /// Counts `channel` under `key`, closing the idle connections it displaces; `nil` when there is
    /// no room (every connection over the limit is busy): the caller closes `channel`.
    func admit(_ channel: any Channel, key: IPAddress?) -> ID? {
        let admission = table.withLock { $0.admit(channel, key: key) }
        switch admission {
        case .admitted(let id, let evicted):
            if !evicted.isEmpty {
                evictions.add(evicted.count, ordering: .relaxed)
                for victim in evicted { victim.close(promise: nil) }
            }
            return id
        case .refused:
            refusals.add(1, ordering: .relaxed)
            return nil
        }
    }

    /// The connection is answering a request: not evictable.
    func markBusy(_ id: ID) { table.withLock { $0.markBusy(id) } }

    /// The connection waits for a request head again.
    func markIdle(_ id: ID) { table.withLock { $0.markIdle(id) } }

    /// The connection closed or upgraded.
    func remove(_ id: ID) { table.withLock { _ = $0.remove(id) } }

    /// A connection was closed for not completing a request head within `server.request_timeout`.
    func recordTimeout() { timeouts.add(1, ordering: .relaxed) }

    /// Connections counted now.
    var count: Int { table.withLock { $0.count } }

    /// Idle connections closed to make room for newcomers, since start.
    var evictionCount: Int { evictions.load(ordering: .relaxed) }
    /// Newcomers closed because every counted connection was busy, since start.
    var refusalCount: Int { refusals.load(ordering: .relaxed) }
    /// Connections closed by `server.request_timeout`, since start.
    var timeoutCount: Int { timeouts.load(ordering: .relaxed) }
}
