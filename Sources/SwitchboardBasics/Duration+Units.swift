extension Duration {
    /// Whole milliseconds, truncated towards zero (`-1.5 ms` is `-1`); saturates at `Int64.min` / `Int64.max`
    /// for durations too long to count in milliseconds.
    package var wholeMilliseconds: Int64 { whole(unitsPerSecond: 1_000) }

    /// Whole microseconds, truncated towards zero; saturates like ``wholeMilliseconds``.
    package var wholeMicroseconds: Int64 { whole(unitsPerSecond: 1_000_000) }

    /// Whole nanoseconds, truncated towards zero; saturates at `Int64.min` / `Int64.max` (about 292 years).
    package var wholeNanoseconds: Int64 { whole(unitsPerSecond: 1_000_000_000) }

    /// Seconds as a `Double` (for rates and reports; sub-attosecond precision is lost past 2^53 attoseconds).
    package var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    /// `components` in units of `1 / unitsPerSecond` s. Both components have the duration's sign, so
    /// dividing the attoseconds truncates towards zero like the whole.
    private func whole(unitsPerSecond: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let saturated: Int64 = seconds < 0 || attoseconds < 0 ? .min : .max
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: unitsPerSecond)
        guard !overflow else { return saturated }
        let (sum, sumOverflow) = scaled.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / unitsPerSecond))
        return sumOverflow ? saturated : sum
    }
}
