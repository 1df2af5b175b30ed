import CallStoreConformance
import NIOCore
import RedisTestSupport
import RedisWire
import SwitchboardCore
import Testing

@testable import SwitchboardRedis

/// Two nodes' Redis stores on one real redis-server; presence is the nodes' presence script.
private struct RedisFixture: CallStoreFixture {
    let scripts: [String: ClusterScripts]
    let n1: any CallStore
    let n2: any CallStore

    init(_ client: RedisClient) {
        let keys = ClusterKeys()
        scripts = [
            "n1": ClusterScripts(redis: client, keys: keys, node: "n1"),
            "n2": ClusterScripts(redis: client, keys: keys, node: "n2"),
        ]
        n1 = RedisCallStore(scripts: scripts["n1"]!, ringTTL: .seconds(70))
        n2 = RedisCallStore(scripts: scripts["n2"]!, ringTTL: .seconds(70))
    }

    func connect(_ user: String, on node: String) async throws {
        _ = try await scripts[node]!.register(user, now: 1).get()
    }

    func disconnect(_ user: String, from node: String) async throws {
        _ = try await scripts[node]!.unregister(user, now: 1).get()
    }
}

@Suite("The Redis call store against a real redis-server", .timeLimit(.minutes(2)))
struct RedisCallStoreTests {
    /// Every check of the contract, on one redis-server (each check has ids of its own).
    @Test func conformance() async throws {
        try await withLiveRedis { _, client in
            let fixture = RedisFixture(client)
            for check in CallStoreConformance.Check.allCases {
                try await CallStoreConformance.run(check, on: fixture)
            }
        }
    }

    @Test func unreachableRedisIsUnavailable() async throws {
        let client = try RedisClient(url: "redis://127.0.0.1:1")
        let store = RedisCallStore(scripts: ClusterScripts(redis: client, keys: ClusterKeys(), node: "n1"), ringTTL: .seconds(70))
        let result = await withCheckedContinuation { continuation in
            store.invite(Call(id: "c1", caller: "a", callee: "b", callType: .audio, createdAt: 1)) {
                continuation.resume(returning: $0)
            }
        }
        guard case .failure = result else {
            Issue.record("an invite without Redis answered \(result)")
            return
        }
    }
}
