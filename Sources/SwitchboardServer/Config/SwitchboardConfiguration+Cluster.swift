import SwitchboardRedis

extension SwitchboardConfiguration.Redis {
    /// `redis.retry_*`, `redis.replay_*` and `redis.reorder_max_bytes`, for ``ClusterNode``.
    package var bufferLimits: ClusterBufferLimits {
        ClusterBufferLimits(
            retryMaxBytes: retryMaxBytes,
            retryMaxMessages: retryMaxMessages,
            retryMaxAge: retryMaxAge,
            replayMaxBytes: replayMaxBytes,
            replayMaxMessages: replayMaxMessages,
            replayMaxAge: replayMaxAge,
            reorderMaxBytes: reorderMaxBytes
        )
    }
}
