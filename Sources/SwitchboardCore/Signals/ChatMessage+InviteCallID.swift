import SwitchboardProto

#if canImport(Glibc)
import Glibc  // memchr, memcmp
#endif

extension ChatMessage {
    /// The `callId` a `call-invite` names itself, or `nil` (not an invite, no id given, or not a valid
    /// signal: the engine answers those). Parses the JSON only when the content mentions `call-invite`.
    package var clientChosenInviteCallID: String? {
        guard contentType == ContentType.signal, Self.mentionsInvite(content) else { return nil }
        guard let signal = try? Signal(content: content), signal.type == .callInvite else { return nil }
        return signal.callId
    }

    /// Whether `content` holds the bytes `call-invite`, or a backslash (the type name may be escaped).
    /// Every signal passes here: `memchr` scans (the backslash, then each `c` in turn), not Foundation's
    /// `contains` (which bridges to `NSString` and was 13 % of a relaying node's CPU).
    package static func mentionsInvite(_ content: String) -> Bool {
        var content = content
        return content.withUTF8 { haystack in
            guard let base = haystack.baseAddress else { return false }
            if memchr(base, Int32(UInt8(ascii: "\\")), haystack.count) != nil { return true }
            return inviteTypeName.withUnsafeBufferPointer { needle in
                var start = 0
                while haystack.count - start >= needle.count,
                    let found = memchr(base + start, Int32(needle[0]), haystack.count - needle.count + 1 - start)
                {
                    let offset = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                    if memcmp(base + offset, needle.baseAddress!, needle.count) == 0 { return true }
                    start = offset + 1
                }
                return false
            }
        }
    }

    private static let inviteTypeName = Array(SignalType.callInvite.rawValue.utf8)
}
