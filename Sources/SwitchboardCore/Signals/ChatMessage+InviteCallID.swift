import SwitchboardProto

extension ChatMessage {
    /// The `callId` a `call-invite` names itself, or `nil` (not an invite, no id given, or not a valid
    /// signal: the engine answers those). Parses the JSON only when the content mentions `call-invite`.
    package var clientChosenInviteCallID: String? {
        guard contentType == ContentType.signal, content.contains(SignalType.callInvite.rawValue) else { return nil }
        guard let signal = try? Signal(content: content), signal.type == .callInvite else { return nil }
        return signal.callId
    }
}
