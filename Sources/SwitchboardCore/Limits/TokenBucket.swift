import SwitchboardBasics

/// A token bucket: holds up to `burst` tokens, refilled at a sustained rate. Not thread-safe: one owner.
package struct TokenBucket: Sendable {
    private let capacity: Double
    private let refillPerNanosecond: Double
    private var tokens: Double
    private var last: UInt64

    /// A bucket of `capacity` tokens refilled at `capacity` per `period`, full at `now` (monotonic ns).
    package init(capacity: Int, per period: Duration, now: UInt64) {
        self.init(rate: capacity, per: period, burst: capacity, now: now)
    }

    /// A bucket refilled at `rate` tokens per `period` that holds at most `burst` tokens, full at `now`
    /// (monotonic nanoseconds): `burst` back-to-back takes pass, then `rate` per `period`.
    package init(rate: Int, per period: Duration, burst: Int, now: UInt64) {
        self.capacity = Double(max(burst, 1))
        let nanoseconds = period.inSeconds * 1e9
        self.refillPerNanosecond = Double(rate) / max(nanoseconds, 1)
        self.tokens = capacity
        self.last = now
    }

    /// Whether the bucket has refilled completely by `now` (its state can be forgotten).
    package func isFull(now: UInt64) -> Bool {
        now > last ? tokens + Double(now - last) * refillPerNanosecond >= capacity : tokens >= capacity
    }

    /// Nanoseconds from `now` until the bucket holds `count` tokens (at most its capacity); 0 if it does.
    package func nanoseconds(untilItHolds count: Int, now: UInt64) -> UInt64 {
        let held = now > last ? tokens + Double(now - last) * refillPerNanosecond : tokens
        let missing = min(Double(count), capacity) - held
        guard missing > 0, refillPerNanosecond > 0 else { return 0 }
        return UInt64((missing / refillPerNanosecond).rounded(.up))
    }

    /// Takes a token if one is there.
    package mutating func take(now: UInt64) -> Bool {
        if now > last {
            tokens = min(capacity, tokens + Double(now - last) * refillPerNanosecond)
            last = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
