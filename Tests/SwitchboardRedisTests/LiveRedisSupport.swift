import NIOCore
import RedisTestSupport
import RedisWire
import Synchronization
import Testing

@testable import SwitchboardRedis

/// Runs `body` with a redis-server of its own and a connected ``RedisClient`` to it.
func withLiveRedis<T: Sendable>(
    _ body: (RedisServerProcess, RedisClient) async throws -> T
) async throws -> T {
    let server = try await RedisServerProcess.started()
    defer { server.stop() }
    let client = try RedisClient(url: server.url())
    let states = client.stateChanges()
    return try await whileRunning(client) {
        try await awaitState(.connected, in: states)
        return try await body(server, client)
    }
}

/// Raw reads of the cluster's keys, to check the layout the scripts write.
struct RawKeys {
    let redis: any RedisCommandSender
    let keys: ClusterKeys

    init(_ redis: any RedisCommandSender, keys: ClusterKeys = ClusterKeys()) {
        self.redis = redis
        self.keys = keys
    }

    /// The node named for `user` in `webrtc:presence`.
    func presence(_ user: String) async throws -> String? {
        try await redis.execute("HGET", RESPArgument(keys.presence), RESPArgument(user)).string
    }

    /// The members of `webrtc:node:<node>:users`.
    func users(of node: String) async throws -> Set<String> {
        Set((try await redis.execute("SMEMBERS", RESPArgument(keys.nodeUsers(node))).array ?? []).compactMap(\.string))
    }

    /// The heartbeat of `node` in `webrtc:nodes`.
    func heartbeat(_ node: String) async throws -> Int64? {
        try await redis.execute("ZSCORE", RESPArgument(keys.nodes), RESPArgument(node)).integer
    }

    /// The fields of `webrtc:call:<id>`.
    func call(_ id: String) async throws -> [String: String] {
        let items = (try await redis.execute("HGETALL", RESPArgument(keys.call(id))).array ?? []).compactMap(\.string)
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: items.count - 1, by: 2) { fields[items[index]] = items[index + 1] }
        return fields
    }

    /// `webrtc:user-call:<user>`.
    func callOf(_ user: String) async throws -> String? {
        try await redis.execute("GET", RESPArgument(keys.userCall(user))).string
    }

    func exists(_ key: String) async throws -> Bool {
        try await redis.execute("EXISTS", RESPArgument(key)).integer == 1
    }

    func pttl(_ key: String) async throws -> Int64 {
        try await redis.execute("PTTL", RESPArgument(key)).integer ?? -3
    }

    /// The PTTL of a call's hash and of both parties' `user-call` keys.
    func ttls(callId: String, _ caller: String, _ callee: String) async throws -> [Int64] {
        [
            try await pttl(keys.call(callId)), try await pttl(keys.userCall(caller)),
            try await pttl(keys.userCall(callee)),
        ]
    }
}

/// Values handed over from callbacks (event loops, other threads) to a test, which awaits them.
///
/// One test task waits at a time.
final class Collected<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    private let counts: AsyncStream<Int>
    private let continuation: AsyncStream<Int>.Continuation

    init() {
        (counts, continuation) = AsyncStream.makeStream(of: Int.self)
    }

    func append(_ element: Element) {
        items.withLock { items in
            items.append(element)
            continuation.yield(items.count)
        }
    }

    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }

    /// Waits (bounded) until at least `count` elements arrived; returns them all.
    @discardableResult
    func wait(for count: Int, timeout: Duration = .seconds(10), _ what: String = "elements") async throws -> [Element] {
        let counts = self.counts
        let current = self.count
        if current < count {
            try await withTimeout(timeout, "\(count) \(what)") {
                for await seen in counts where seen >= count { return }
                throw TimedOut(what: "\(count) \(what) (stream ended)")
            }
        }
        return all
    }
}
