import SwitchboardCore

extension ClusterPorts {
    /// A node's ports on Redis: presence and calls by script, delivery through `delivery`, a set per
    /// user's block list of at most `maxBlocksPerUser`.
    static func redis(
        _ scripts: ClusterScripts,
        delivery: ClusterDelivery,
        ringTimeout: Duration,
        reconnectGrace: Duration = .seconds(10),
        maxBlocksPerUser: Int = 1000,
        isReady: @escaping @Sendable () -> Bool
    ) -> ClusterPorts {
        ClusterPorts(
            presence: RedisPresence(scripts: scripts),
            // Redis keeps a ringing call a little longer than its timer, should every timer for it be lost.
            calls: RedisCallStore(scripts: scripts, ringTTL: ringTimeout + .seconds(10)),
            delivery: delivery,
            kept: RedisKeptSignals(redis: scripts.redis, keys: scripts.keys, grace: reconnectGrace, limits: .standard),
            blocks: RedisBlockList(redis: scripts.redis, keys: scripts.keys, maxPerUser: maxBlocksPerUser),
            isReady: isReady
        )
    }
}
