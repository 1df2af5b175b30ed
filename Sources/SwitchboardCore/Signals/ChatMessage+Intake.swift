import SwitchboardProto

/// A client's message once checked and stamped: what the engines act on (PROTOCOL.md §1–§3).
package enum Intake: Sendable {
    /// A direct message of content types 1-5, to relay as it is.
    case plain(ChatMessage)
    /// A WebRTC signal and the message that carried it.
    case signal(Signal, ChatMessage)
    /// Not acceptable: answer the sender with this notice.
    case refused(Notice)
}

extension ChatMessage {
    /// Checks the message type, recipient and content of a message `sender` sent, stamps it at `now`,
    /// and parses a signal's JSON. Consuming: the stamped message is this one, not a copy of its fields.
    package consuming func intake(from sender: UserIdentity, now: Int64) -> Intake {
        switch messageType {
        case MessageType.direct, 0:
            break
        case MessageType.group:
            return .refused(.error(.unsupported, message: "group messages are not supported"))
        default:
            return .refused(.error(.invalidMessage, message: "messageType must be 1 (direct)"))
        }
        guard UserIdentity.isValidUserID(to) else {
            return .refused(.error(.invalidMessage, message: "\"to\" must name a user"))
        }
        var message = consume self
        message.stamp(sender: sender, now: now)
        switch message.contentType {
        case ContentType.plain:
            return .plain(message)
        case ContentType.signal:
            do {
                return .signal(try Signal(content: message.content), message)
            } catch {
                return .refused(.error(error.reason, message: error.message))
            }
        default:
            return .refused(.error(.invalidMessage, message: "contentType must be 1-6"))
        }
    }
}
