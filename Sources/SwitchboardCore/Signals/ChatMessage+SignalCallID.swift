import SwitchboardProto

extension ChatMessage {
    /// The `callId` a signal (or a server notice about a call) names, or `nil` (not a signal, no id).
    /// Parses the JSON: for messages that could not be delivered, not on the relay path.
    var signalCallId: String? {
        guard contentType == ContentType.signal, content.contains("callId"),
            let object = try? JSONValue(parsing: content).objectValue
        else { return nil }
        return object["callId"]?.stringValue
    }
}
