import Prometheus
import SwitchboardCore

/// What `/metrics` shows: the registry's metrics (the engine's counters and histograms), with the
/// node's gauges read from the engine and the WebSocket gate at scrape time.
///
/// The gauges are read, not kept up to date on each connect and disconnect: the counts they come
/// from are exact, and reading them costs nothing per connection.
struct NodeMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let switchboard: Switchboard
    private let gate: WebSocketGate
    private let connections: Gauge
    private let sessions: Gauge
    private let callsInProgress: Gauge

    init(metrics: PrometheusMetrics, switchboard: Switchboard, gate: WebSocketGate) {
        self.registry = metrics.registry
        self.switchboard = switchboard
        self.gate = gate
        let registry = metrics.registry
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "switchboard", metricName: name, unitName: "", helpText: help),
                labels: [("node", switchboard.nodeId)]
            )
        }
        connections = gauge("websocket_connections", "Open WebSocket connections.")
        sessions = gauge("sessions", "Authenticated users connected to this node.")
        callsInProgress = gauge("calls_in_progress", "Calls ringing or active.")
    }

    /// Every metric in the Prometheus text format (version 0.0.4), gauges as of now.
    func prometheusText() -> [UInt8] {
        connections.set(Int64(gate.openConnections))
        sessions.set(Int64(switchboard.sessionCount))
        callsInProgress.set(Int64(switchboard.callCount))
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8192)
        registry.emit(into: &buffer)
        return buffer
    }
}
