import SwitchboardProto

/// A message from the server itself (PROTOCOL.md §4): `contentType` 6, `messageType` 1, `from` "".
package enum Notice: Sendable, Equatable {
    case callRinging(callId: String, to: String)
    case callFailed(callId: String?, to: String, reason: CallFailureReason)
    case callHangup(callId: String, reason: HangupReason)
    case error(ErrorReason, message: String)
    case sessionReplaced

    /// The JSON `content` of the notice.
    package var content: JSONObject {
        switch self {
        case .callRinging(let callId, let to):
            ["type": "call-ringing", "callId": .string(callId), "to": .string(to)]
        case .callFailed(let callId, let to, let reason):
            [
                "type": "call-failed", "callId": callId.map(JSONValue.string) ?? .null, "to": .string(to),
                "reason": .string(reason.rawValue), "message": .string(reason.message),
            ]
        case .callHangup(let callId, let reason):
            ["type": "call-hangup", "callId": .string(callId), "reason": .string(reason.rawValue)]
        case .error(let reason, let message):
            ["type": "error", "reason": .string(reason.rawValue), "message": .string(message)]
        case .sessionReplaced:
            ["type": "session-replaced"]
        }
    }

    /// The notice as a `ChatMessage` for `recipient`, stamped at `now` (unix ms).
    package func message(to recipient: String, now: Int64) -> ChatMessage {
        var message = ChatMessage()
        message.to = recipient
        message.contentType = ContentType.signal
        message.messageType = MessageType.direct
        message.content = JSONValue.object(content).serialized()
        message.timestamp = now
        return message
    }
}
