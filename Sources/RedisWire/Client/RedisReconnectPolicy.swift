import SwitchboardBasics

/// How long to wait between reconnect attempts: exponential backoff with a cap.
///
/// After a connection drops (or an attempt fails) the `n`th retry waits
/// `min(initialDelay * multiplier^n, maximumDelay)`, shortened at random by up to `jitter`
/// of itself so that many nodes do not reconnect in lockstep. A successful connection resets `n`.
package struct RedisReconnectPolicy: Sendable, Hashable {
    /// The wait before the first retry.
    package var initialDelay: Duration
    /// The longest wait.
    package var maximumDelay: Duration
    /// The growth factor per failed attempt (at least 1).
    package var multiplier: Double
    /// The fraction (0...1) by which a wait may be shortened at random.
    package var jitter: Double

    /// 50 ms, doubling, capped at 2 s, with 10 % jitter by default.
    package init(
        initialDelay: Duration = .milliseconds(50),
        maximumDelay: Duration = .seconds(2),
        multiplier: Double = 2,
        jitter: Double = 0.1
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = max(multiplier, 1)
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The wait before retry number `attempt` (0 for the first retry); `random` in 0..<1 picks the jitter.
    package func delay(attempt: Int, random: Double = Double.random(in: 0..<1)) -> Duration {
        let maximum = maximumDelay.inSeconds
        var delay = min(initialDelay.inSeconds, maximum)
        var remaining = attempt
        while remaining > 0, delay < maximum {
            delay = min(delay * multiplier, maximum)
            remaining -= 1
        }
        return .nanoseconds(Int64(delay * (1 - jitter * random) * 1e9))
    }
}
