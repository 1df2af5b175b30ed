import Hummingbird
import SwitchboardAuth
import SwitchboardBasics
import SwitchboardCore

/// What the HTTP endpoints need from the node.
struct RouteDependencies: Sendable {
    let switchboard: Switchboard
    let store: any CallRecordStore
    let authenticator: JWTAuthenticator
    let iceServers: ICEServerIssuer
    let metrics: NodeMetrics
}

extension Router where Context == BasicRequestContext {
    /// `/healthz`, `/readyz`, `/metrics` (unless `servingMetrics` is false: `metrics.port` serves it
    /// on a listener of its own), `/api/presence/{user}`, `/api/calls` (PROTOCOL.md §7), `/api/ice-servers` (§8).
    func addSwitchboardRoutes(_ dependencies: RouteDependencies, servingMetrics: Bool = true) {
        get("healthz") { _, _ in Response.json(["status": "ok"]) }
        get("readyz") { _, _ in
            guard dependencies.switchboard.isReady else {
                return Response.json(["status": "unavailable", "reason": "Redis unreachable"], status: .serviceUnavailable)
            }
            return Response.json(["status": "ready"])
        }
        if servingMetrics { addMetricsRoute(dependencies.metrics) }
        get("api/presence/:user") { request, context in
            _ = try dependencies.authenticator.authenticate(request)
            let user = try context.parameters.require("user")
            let node: String?
            do {
                node = try await dependencies.switchboard.presence(of: user)
            } catch {
                throw HTTPError(.serviceUnavailable, message: "presence unavailable: Redis unreachable")
            }
            return Response.json([
                "user": .string(user), "online": .bool(node != nil), "node": node.map(JSONValue.string) ?? .null,
            ])
        }
        get("api/ice-servers") { request, _ in
            let identity = try dependencies.authenticator.authenticate(request)
            let now = SwitchboardClock.system.nowMilliseconds() / 1000
            return Response.json(.object(dependencies.iceServers.servers(for: identity.id, now: now).content))
        }
        get("api/calls") { request, _ in
            let identity = try dependencies.authenticator.authenticate(request)
            let limit = request.uri.queryParameters.get("limit", as: Int.self).map { min(max($0, 1), 500) } ?? 50
            let records = try await dependencies.store.records(involving: identity.id, limit: limit)
            return Response.json(["calls": .array(records.map(\.json))])
        }
    }
}

extension Router where Context == BasicRequestContext {
    /// `GET /metrics`: Prometheus text (version 0.0.4).
    func addMetricsRoute(_ metrics: NodeMetrics) {
        get("metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.prometheusText()))
            )
        }
    }
}

extension CallRecord {
    /// The record as `/api/calls` shows it: the `call_records` columns, times in ISO-8601 UTC.
    var json: JSONValue {
        func time(_ milliseconds: Int64?) -> JSONValue {
            milliseconds.map { .string(ISO8601Timestamp.format(milliseconds: $0)) } ?? .null
        }
        return [
            "call_id": .string(callId),
            "caller_id": .string(callerId),
            "callee_id": .string(calleeId),
            "call_type": .integer(callType.rawValue),
            "status": .integer(status.rawValue),
            "start_time": time(startTime),
            "end_time": time(endTime),
            "duration": .integer(duration),
            "end_reason": endReason.map(JSONValue.string) ?? .null,
            "connected_time": time(connectedTime),
            "created_at": time(createdAt),
            "updated_at": time(updatedAt),
        ]
    }
}
