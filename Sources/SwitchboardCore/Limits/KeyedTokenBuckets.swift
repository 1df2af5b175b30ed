import Synchronization

/// One token bucket per key (a user id, a client address), shared by every connection and thread.
///
/// A key's bucket is forgotten once it has refilled completely: a full bucket is what a new key gets, so
/// forgetting it changes nothing, and the table holds only keys that were active within one refill
/// time (`burst / rate`). Sweeps run when the table has doubled since the last one, so they cost
/// O(1) per take on average; `maxKeys` caps the table even under a flood of distinct keys (a new
/// key is refused while it is full of active ones).
package final class KeyedTokenBuckets<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var buckets: [Key: TokenBucket] = [:]
        var sweepAt: Int
    }

    private let rate: Int
    private let period: Duration
    private let burst: Int
    private let maxKeys: Int
    private let minimumSweep: Int
    private let state: Mutex<State>

    /// Buckets refilled at `rate` per `period` holding up to `burst` tokens each; at most `maxKeys` keys.
    package init(rate: Int, per period: Duration, burst: Int, maxKeys: Int = 100_000) {
        self.rate = rate
        self.period = period
        self.burst = burst
        self.maxKeys = maxKeys
        self.minimumSweep = min(1024, maxKeys)
        self.state = Mutex(State(sweepAt: min(1024, maxKeys)))
    }

    /// Takes a token from `key`'s bucket at `now` (monotonic nanoseconds); `false` when it is empty.
    package func take(_ key: Key, now: UInt64) -> Bool {
        state.withLock { state in
            if var bucket = state.buckets[key] {
                let taken = bucket.take(now: now)
                state.buckets[key] = bucket
                return taken
            }
            if state.buckets.count >= state.sweepAt {
                state.buckets = state.buckets.filter { !$0.value.isFull(now: now) }
                state.sweepAt = min(max(minimumSweep, state.buckets.count * 2), maxKeys)
            }
            guard state.buckets.count < maxKeys else { return false }
            var bucket = TokenBucket(rate: rate, per: period, burst: burst, now: now)
            let taken = bucket.take(now: now)
            state.buckets[key] = bucket
            return taken
        }
    }

    /// How many keys the table holds now (for tests and metrics).
    package var count: Int { state.withLock { $0.buckets.count } }
}
