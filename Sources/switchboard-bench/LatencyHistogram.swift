import Histogram
import NIOCore

/// Latencies in µs (HdrHistogram, 3 significant digits).
struct LatencyHistogram {
    private var histogram: Histogram<UInt64>

    init() {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        self.histogram = histogram
    }

    mutating func record(from start: UInt64, to end: UInt64) {
        histogram.record(end > start ? end - start : 0)
    }

    /// The percentile in µs, nil when nothing was recorded.
    func percentile(_ value: Double) -> UInt64? {
        histogram.totalCount > 0 ? histogram.valueAtPercentile(value) : nil
    }

    static var nowMicroseconds: UInt64 { NIODeadline.now().uptimeNanoseconds / 1000 }
}
