import CoreMetrics

/// One counter per case of `Key`, all created up front, so counting a case formats no label and
/// allocates nothing.
struct CounterTable<Key: MetricLabelled>: Sendable {
    private let counters: [Counter]

    /// Counters named `label`, one per case, with `dimension` set to the case's label value after
    /// the `fixed` dimensions.
    init(label: String, dimension: String, fixed: [(String, String)] = [], factory: any MetricsFactory) {
        var counters: [Counter?] = Array(repeating: nil, count: Key.allCases.count)
        for key in Key.allCases {
            precondition(
                counters.indices.contains(key.metricIndex) && counters[key.metricIndex] == nil,
                "metricIndex of \(key) is not a unique position"
            )
            counters[key.metricIndex] = Counter(
                label: label,
                dimensions: fixed + [(dimension, key.metricLabel)],
                factory: factory
            )
        }
        self.counters = counters.map { $0! }
    }

    /// The counter of `key`.
    subscript(key: Key) -> Counter { counters[key.metricIndex] }
}
