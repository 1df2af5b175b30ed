import SwitchboardProto

/// A message from the server itself (PROTOCOL.md §4): `contentType` 6, `messageType` 1, `from` "".
package enum Notice: Sendable, Equatable {
    case callRinging(callId: String, to: String)
    case callFailed(callId: String?, to: String, reason: CallFailureReason)
    case callHangup(callId: String, reason: HangupReason)
    case error(ErrorReason, message: String)
    case sessionReplaced
    /// The first frames of a party back within its reconnect grace (PROTOCOL.md §8).
    case callResumed(callId: String, peer: String, state: Call.State)
    /// To the other party, once what was kept for the returning one is on its way.
    case peerReconnected(callId: String)
    /// To the sender of a signal kept for an absent party that gave way to newer ones: `error` `offline`
    /// (with the signal's `callId` when it has one).
    case keptSignalGaveWay(callId: String?, recipient: String)
    /// The first frame after the upgrade (PROTOCOL.md §8).
    case iceServers(ICEServers)

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
        case .callResumed(let callId, let peer, let state):
            [
                "type": "call-resumed", "callId": .string(callId), "peer": .string(peer),
                "state": .string(state == .active ? "active" : "ringing"),
            ]
        case .peerReconnected(let callId):
            ["type": "peer-reconnected", "callId": .string(callId)]
        case .keptSignalGaveWay(let callId, let recipient):
            [
                "type": "error", "reason": .string(ErrorReason.offline.rawValue),
                "message": .string("\(recipient) is reconnecting; a signal kept for them gave way to newer ones"),
                "callId": callId.map(JSONValue.string) ?? .null,
            ]
        case .iceServers(let servers):
            servers.content
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
