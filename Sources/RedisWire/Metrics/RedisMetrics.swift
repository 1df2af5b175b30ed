import CoreMetrics

/// What RedisWire measures, through the swift-metrics facade: command latency and pub/sub traffic.
///
/// Create one per process (or per client) and pass it to ``RedisClient``, ``RedisSubscriber`` or
/// ``RedisConnection/connect(configuration:eventLoop:logger:metrics:)``; every connection they open
/// shares its metric objects, so nothing is created per command or per message.
///
/// - `switchboard_redis_command_duration_seconds` (histogram): from the moment a command is handed
///   to a connection (`send`) to its reply, error replies included; commands that time out or fail
///   with the connection are not recorded.
/// - `switchboard_redis_pubsub_messages_total{direction="out"}`: `PUBLISH` commands handed to a
///   connection, counted by the connection itself, whoever built the command (so no caller has to
///   remember to count). A publish done inside a script (`EVAL`) is not seen.
/// - `switchboard_redis_pubsub_messages_total{direction="in"}`: messages a ``RedisSubscriber``
///   received.
package final class RedisMetrics: Sendable {
    /// The exported metric names.
    package enum Name {
        /// Histogram (seconds): command latency, send to reply.
        package static let commandDuration = "switchboard_redis_command_duration_seconds"
        /// Counter, label `direction` (`in` | `out`): pub/sub messages received and published.
        package static let pubSubMessages = "switchboard_redis_pubsub_messages_total"
    }

    /// Bucket upper bounds for this type's histograms, by metric name, for a Prometheus factory
    /// (`PrometheusMetricsFactory.durationHistogramBuckets`): 100 µs to 1 s.
    package static let histogramBuckets: [String: [Duration]] = [
        Name.commandDuration: [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000]
            .map(Duration.microseconds)
    ]

    let commandDuration: Timer
    let messagesIn: Counter
    let messagesOut: Counter

    /// Creates the metrics with `factory`: by default the one bootstrapped for the process
    /// (`MetricsSystem.factory`, a no-op until bootstrapped).
    package init(factory: any MetricsFactory = MetricsSystem.factory) {
        commandDuration = Timer(label: Name.commandDuration, factory: factory)
        messagesIn = Counter(label: Name.pubSubMessages, dimensions: [("direction", "in")], factory: factory)
        messagesOut = Counter(label: Name.pubSubMessages, dimensions: [("direction", "out")], factory: factory)
    }
}
