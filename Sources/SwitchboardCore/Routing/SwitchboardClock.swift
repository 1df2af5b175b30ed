#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock milliseconds for timestamps and records, monotonic nanoseconds for rate limits.
package struct SwitchboardClock: Sendable {
    package let nowMilliseconds: @Sendable () -> Int64
    package let monotonicNanoseconds: @Sendable () -> UInt64

    package init(nowMilliseconds: @escaping @Sendable () -> Int64, monotonicNanoseconds: @escaping @Sendable () -> UInt64) {
        self.nowMilliseconds = nowMilliseconds
        self.monotonicNanoseconds = monotonicNanoseconds
    }

    /// The system clocks.
    package static let system = SwitchboardClock(
        nowMilliseconds: {
            var time = timespec()
            clock_gettime(CLOCK_REALTIME, &time)
            return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
        },
        monotonicNanoseconds: {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
        }
    )
}
