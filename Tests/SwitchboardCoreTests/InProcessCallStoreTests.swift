import CallStoreConformance
import SwitchboardCore
import Synchronization
import Testing

/// The in-process store, whose presence is a table the test sets; both "nodes" are the same store.
private final class InProcessFixture: CallStoreFixture {
    /// Who is online where.
    private final class Presence: Sendable {
        let nodes = Mutex<[String: String]>([:])
    }

    private let presence = Presence()
    private let store: InProcessCallStore

    init() {
        let presence = self.presence
        store = InProcessCallStore(whereIs: { user in presence.nodes.withLock { $0[user] } })
    }

    var n1: any CallStore { store }
    var n2: any CallStore { store }

    func connect(_ user: String, on node: String) async throws {
        presence.nodes.withLock { $0[user] = node }
    }

    func disconnect(_ user: String, from node: String) async throws {
        presence.nodes.withLock { if $0[user] == node { $0[user] = nil } }
    }
}

@Suite struct InProcessCallStoreTests {
    @Test(arguments: CallStoreConformance.Check.allCases)
    func conformance(_ check: CallStoreConformance.Check) async throws {
        try await CallStoreConformance.run(check, on: InProcessFixture())
    }
}
