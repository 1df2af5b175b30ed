/// A token bucket: `capacity` tokens, refilled at `capacity` per `period`. Not thread-safe: one owner.
public struct TokenBucket: Sendable {
    private let capacity: Double
    private let refillPerNanosecond: Double
    private var tokens: Double
    private var last: UInt64

    /// A bucket of `capacity` tokens per `period`, full at `now` (monotonic nanoseconds).
    public init(capacity: Int, per period: Duration, now: UInt64) {
        self.capacity = Double(capacity)
        let (seconds, attoseconds) = period.components
        let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        self.refillPerNanosecond = Double(capacity) / max(nanoseconds, 1)
        self.tokens = Double(capacity)
        self.last = now
    }

    /// Whether the bucket has refilled completely by `now` (its state can be forgotten).
    public func isFull(now: UInt64) -> Bool {
        now > last ? tokens + Double(now - last) * refillPerNanosecond >= capacity : tokens >= capacity
    }

    /// Takes a token if one is there.
    public mutating func take(now: UInt64) -> Bool {
        if now > last {
            tokens = min(capacity, tokens + Double(now - last) * refillPerNanosecond)
            last = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
