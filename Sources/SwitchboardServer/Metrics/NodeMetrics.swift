import SwitchboardCore

/// The node's gauges in Prometheus text format for `/metrics`.
struct NodeMetrics: Sendable {
    let switchboard: Switchboard
    let gate: WebSocketGate

    func prometheusText() -> String {
        let node = switchboard.settings.nodeId
        let gauges: [(name: String, help: String, value: Int)] = [
            ("switchboard_websocket_connections", "Open WebSocket connections.", gate.openConnections),
            ("switchboard_sessions", "Authenticated users connected to this node.", switchboard.sessionCount),
            ("switchboard_calls_in_progress", "Calls ringing or active.", switchboard.callCount),
        ]
        return gauges.map { gauge in
            "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n\(gauge.name){node=\"\(node)\"} \(gauge.value)\n"
        }.joined()
    }
}
