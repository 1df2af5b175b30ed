import CoreMetrics
import Prometheus
import RedisWire
import SwitchboardCore

/// Where the node's metrics live: the registry `/metrics` renders, and the swift-metrics factory that
/// creates metric objects in it, with the histogram buckets of every Switchboard metric.
///
/// `buildApplication` creates the node's metric objects with ``factory`` explicitly, so several
/// applications in one process (tests) each get their own registry without touching the global
/// `MetricsSystem`. `switchboard serve` also bootstraps the global system with it
/// (``bootstrapMetrics()``), so libraries that use the facade report into the same registry.
package struct PrometheusMetrics: Sendable {
    /// The collector registry `/metrics` renders.
    package let registry: PrometheusCollectorRegistry
    /// A factory that creates metrics in ``registry``.
    package let factory: PrometheusMetricsFactory

    /// Metrics in `registry` (by default a new, empty one).
    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = Self.histogramBuckets
        self.registry = registry
        self.factory = factory
    }

    /// The buckets of every histogram the node exports, by metric name.
    static var histogramBuckets: [String: [Duration]] {
        SignalingMetrics.histogramBuckets.merging(RedisMetrics.histogramBuckets) { first, _ in first }
    }
}

/// Makes a ``PrometheusMetrics`` the process-wide swift-metrics backend and returns it, for
/// `buildApplication(_:logger:metrics:)`.
///
/// Call it once per process, at start-up (`MetricsSystem.bootstrap` traps when called twice);
/// tests pass their own ``PrometheusMetrics`` to `buildApplication` instead.
package func bootstrapMetrics() -> PrometheusMetrics {
    let metrics = PrometheusMetrics()
    MetricsSystem.bootstrap(metrics.factory)
    return metrics
}
