import SwitchboardBasics
import SwitchboardCore

/// Writes call events as JSON lines in the seed's format (PROTOCOL.md §7):
/// `{"timestamp","level","event","caller","callee","call_id","metadata":{"user_agent","ip"}}`;
/// with `webhook`, each line is posted to the app's backend too (PROTOCOL.md §10).
struct CallEventLog: CallEventSink {
    var webhook: EventWebhook?

    func emit(_ event: CallEvent) {
        var metadata: JSONObject = [
            "user_agent": .string(event.connection?.userAgent ?? ""),
            "ip": .string(event.connection?.ip ?? ""),
        ]
        if let reason = event.reason { metadata["reason"] = .string(reason) }
        let line: JSONObject = [
            "timestamp": .string(ISO8601Timestamp.format(milliseconds: SwitchboardClock.system.nowMilliseconds())),
            "level": .string(event.level),
            "event": .string(event.name.rawValue),
            "caller": .string(event.caller),
            "callee": .string(event.callee),
            "call_id": .string(event.callId),
            "metadata": .object(metadata),
        ]
        let text = JSONValue.object(line).serialized()
        LineWriter.standardOutput.write(text)
        webhook?.post(text, callId: event.callId)
    }
}
