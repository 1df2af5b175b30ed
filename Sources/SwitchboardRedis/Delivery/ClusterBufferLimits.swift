/// What a node keeps per other node while delivering across the cluster (PROTOCOL.md §9): the
/// configuration's `redis.retry_*`, `redis.replay_*` and `redis.reorder_max_bytes`.
///
/// Bytes count each envelope's encoded size plus ``NodeOutbox/Parcel/overhead`` (what keeping one
/// costs besides its bytes), so that many small envelopes are bounded too.
package struct ClusterBufferLimits: Sendable, Equatable {
    /// Envelopes to one node whose delivery is open: sent and not answered yet, or held while that
    /// node's inbox has no subscriber and published again every 100 ms for up to `maxAge`. Beyond the
    /// bytes or count, the oldest held ones give way and their senders are told `unavailable`.
    package var retryMaxBytes: Int
    package var retryMaxMessages: Int
    package var retryMaxAge: Duration
    /// Envelopes to one node that Redis counted as received, kept to publish again should the
    /// receiving node ask (they were lost with its subscriber connection). Beyond, the oldest are dropped.
    package var replayMaxBytes: Int
    package var replayMaxMessages: Int
    package var replayMaxAge: Duration
    /// Envelopes from one node that arrived ahead of a missing number and wait for it. Beyond, the
    /// wait ends early: they are delivered, and the missing ones still are if they come in time.
    package var reorderMaxBytes: Int

    /// - Parameters: see the properties; every one is at least 1 (`retryMaxBytes` should be above the
    ///   largest message a client may send, or such messages cannot cross).
    package init(
        retryMaxBytes: Int,
        retryMaxMessages: Int,
        retryMaxAge: Duration,
        replayMaxBytes: Int,
        replayMaxMessages: Int,
        replayMaxAge: Duration,
        reorderMaxBytes: Int
    ) {
        self.retryMaxBytes = retryMaxBytes
        self.retryMaxMessages = retryMaxMessages
        self.retryMaxAge = retryMaxAge
        self.replayMaxBytes = replayMaxBytes
        self.replayMaxMessages = replayMaxMessages
        self.replayMaxAge = replayMaxAge
        self.reorderMaxBytes = reorderMaxBytes
    }

    /// The configuration's defaults (`SwitchboardConfiguration+Keys.swift`; a test keeps them equal):
    /// 32 MiB for retries and 32 MiB for replays per destination node, 64 MiB together.
    package static let standard = ClusterBufferLimits(
        retryMaxBytes: 32 << 20,
        retryMaxMessages: 16_384,
        retryMaxAge: .seconds(2),
        replayMaxBytes: 32 << 20,
        replayMaxMessages: 4096,
        replayMaxAge: .seconds(10),
        reorderMaxBytes: 16 << 20
    )

    var retry: ParcelQueueLimits {
        .init(maxBytes: retryMaxBytes, maxCount: retryMaxMessages, maxAge: retryMaxAge)
    }

    var replay: ParcelQueueLimits {
        .init(maxBytes: replayMaxBytes, maxCount: replayMaxMessages, maxAge: replayMaxAge)
    }

    /// How long a receiving node waits for a missing number: the sender gives up on a held envelope
    /// (and tells its sender) after `retryMaxAge`, so a little longer than that.
    var gapTimeout: Duration { retryMaxAge + .milliseconds(500) }
}
