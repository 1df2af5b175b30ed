import NIOCore
import RedisWire
import SwitchboardCore

/// The cluster's ``BlockList``: one Redis set per user (``ClusterKeys/blocks(_:)``), so that a change is
/// seen by every node as soon as Redis has answered it.
struct RedisBlockList: BlockList {
    /// Adds `ARGV[2]` to the set `ARGV[1]` unless it holds `ARGV[3]` members already: 1 if the user is
    /// on the list now, 0 if it was full.
    static let addScript = RedisScript(
        """
        local key, user, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
        if redis.call('SISMEMBER', key, user) == 1 then return 1 end
        if redis.call('SCARD', key) >= max then return 0 end
        redis.call('SADD', key, user)
        return 1
        """
    )

    let redis: any RedisCommandSender
    let keys: ClusterKeys
    let maxPerUser: Int

    func isBlocked(
        _ sender: String,
        by recipient: String,
        then done: @escaping @Sendable (Result<Bool, BlockListUnavailable>) -> Void
    ) {
        redis.send(["SISMEMBER", RESPArgument(keys.blocks(recipient)), RESPArgument(sender)]).whenComplete { result in
            done(result.map { $0.integer == 1 }.mapError(Self.unavailable))
        }
    }

    func block(_ user: String, by owner: String) async throws(BlockListUnavailable) -> BlockChange {
        let arguments = [RESPArgument(keys.blocks(owner)), RESPArgument(user), RESPArgument(maxPerUser)]
        let reply = try await Self.answer(Self.addScript.run(on: redis, arguments))
        return reply.integer == 1 ? .blocked : .full
    }

    func unblock(_ user: String, by owner: String) async throws(BlockListUnavailable) {
        _ = try await Self.answer(redis.send(["SREM", RESPArgument(keys.blocks(owner)), RESPArgument(user)]))
    }

    func blocked(by owner: String) async throws(BlockListUnavailable) -> [String] {
        let reply = try await Self.answer(redis.send(["SMEMBERS", RESPArgument(keys.blocks(owner))]))
        return (reply.array ?? []).compactMap(\.string).sorted()
    }

    private static func answer(_ future: EventLoopFuture<RESPValue>) async throws(BlockListUnavailable) -> RESPValue {
        do {
            return try await future.get()
        } catch {
            throw unavailable(error)
        }
    }

    private static func unavailable(_ error: any Error) -> BlockListUnavailable {
        BlockListUnavailable("\(error)")
    }
}
