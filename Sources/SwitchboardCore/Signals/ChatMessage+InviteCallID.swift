import SwitchboardProto

extension ChatMessage {
    /// The `callId` a `call-invite` names itself, or `nil` (not an invite, no id given, or not a valid
    /// signal: the engine answers those). Parses the JSON only when the content mentions `call-invite`.
    package var clientChosenInviteCallID: String? {
        guard contentType == ContentType.signal, Self.mentionsInvite(content) else { return nil }
        guard let signal = try? Signal(content: content), signal.type == .callInvite else { return nil }
        return signal.callId
    }

    /// Whether `content` holds the bytes `call-invite`, or a backslash (the type name may be escaped).
    /// Every signal passes here: a byte scan, not Foundation's `contains` (which bridges to `NSString`
    /// and was 13 % of a relaying node's CPU).
    static func mentionsInvite(_ content: String) -> Bool {
        let needle = SignalType.callInvite.rawValue.utf8
        var content = content
        return content.withUTF8 { haystack in
            guard haystack.count >= needle.count, let first = needle.first else { return false }
            var start = 0
            let last = haystack.count - needle.count
            while start <= last {
                let byte = haystack[start]
                if byte == UInt8(ascii: "\\") { return true }
                if byte == first, haystack[start..<start + needle.count].elementsEqual(needle) { return true }
                start += 1
            }
            return false
        }
    }
}
