// Fuzzes what a node does with one binary frame from a client: bytes → `ChatMessage(serializedBytes:)` →
// `intake(from:now:)` (SwitchboardCore/Signals), then what would be relayed.
//
// Properties, for every input that decodes as a ChatMessage:
// - intake never trusts the client about who sent it: a relayed message carries the sender's id, name
//   and avatar, the client's timestamp or `now`, and the client's recipient and content type;
// - a signal's relayed form (`Signal.relayed(in:from:callId:)`) is a valid signal again, of the same type,
//   in the given call, from the sender; its message encodes and decodes to itself;
// - a refusal's notice becomes a message whose content is valid JSON.
import Foundation
import FuzzSupport
import SwitchboardCore
import SwitchboardProto

let sender = UserIdentity(id: "alice", name: "Alice \"A\" ✓", avatar: "https://example.com/a.png")!
let now: Int64 = 1_700_000_000_000

/// What intake must have stamped over the client's claims, and what it must have kept.
func checkStamped(_ stamped: ChatMessage, from original: ChatMessage) {
    check(stamped.from == sender.id, "from \(stamped.from)")
    check(stamped.fromUsername == sender.name, "fromUsername \(stamped.fromUsername)")
    check(stamped.avatar == sender.avatar, "avatar \(stamped.avatar)")
    check(stamped.timestamp == (original.timestamp == 0 ? now : original.timestamp), "timestamp \(stamped.timestamp)")
    check(stamped.to == original.to && UserIdentity.isValidUserID(stamped.to), "to \(stamped.to)")
    check(stamped.contentType == original.contentType, "contentType changed")
}

/// `message` encodes, and the encoding decodes to an equal message.
func checkEncodes(_ message: ChatMessage) {
    do {
        let bytes: [UInt8] = try message.serializedBytes()
        let decoded = try ChatMessage(serializedBytes: bytes)
        check(decoded == message, "encoding round trip changed the message")
    } catch {
        check(false, "encoding or decoding failed: \(error)")
    }
}

runFuzzer { input in
    guard let message = try? ChatMessage(serializedBytes: Array(input)) else { return }
    _ = message.heartbeatReply

    switch message.intake(from: sender, now: now) {
    case .plain(let stamped):
        checkStamped(stamped, from: message)
        check(ContentType.plain.contains(stamped.contentType), "plain intake of contentType \(stamped.contentType)")
        check(stamped.content == message.content, "plain content changed")
        checkEncodes(stamped)

    case .signal(let signal, let stamped):
        checkStamped(stamped, from: message)
        check(stamped.contentType == ContentType.signal, "signal intake of contentType \(stamped.contentType)")
        if let callId = signal.callId {
            check(!callId.isEmpty && callId.utf8.count <= Signal.maxCallIDLength, "callId \(callId) accepted")
        }
        let callId = signal.callId ?? "call-0001"
        let relayed = signal.relayed(in: stamped, from: sender, callId: callId)
        let again: Signal
        do throws(SignalError) {
            again = try Signal(content: relayed.content)
        } catch {
            check(false, "a relayed signal is refused (\(error.message)): \(relayed.content)")
            return
        }
        check(again.type == signal.type, "relayed type \(again.type) for \(signal.type)")
        check(again.callId == callId, "relayed callId \(again.callId ?? "nil") for \(callId)")
        check(again.callType == signal.callType, "relayed callType changed")
        check(again.body["from"] == .string(sender.id), "relayed from \(String(describing: again.body["from"]))")
        check(again.body["fromName"] == sender.name.map(JSONValue.string), "relayed fromName")
        checkEncodes(relayed)

    case .refused(let notice):
        let answer = notice.message(to: sender.id, now: now)
        check((try? JSONValue(parsing: answer.content)) != nil, "notice content is not JSON: \(answer.content)")
        checkEncodes(answer)
    }
}
