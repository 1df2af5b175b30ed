import SwitchboardProto

/// A parsed WebRTC signal: the typed fields the server acts on, and the whole JSON object, which is relayed
/// with unknown fields preserved.
package struct Signal: Sendable {
    /// What the signal asks for.
    package let type: SignalType
    /// The call it refers to; `nil` means "the call between sender and recipient".
    package var callId: String?
    /// `call-invite` only: audio unless the client asked for video.
    package let callType: CallType
    /// The JSON object as received, later stamped by the server.
    package private(set) var body: JSONObject
    /// The content as the client sent it and where its members lie, while ``body`` is unchanged since:
    /// relaying then copies the client's bytes instead of writing the tree again.
    private var source: (text: String, members: [JSONMember])?

    /// The members the server writes into every signal it relays, in the order it adds those a client
    /// left out: the call, the sender's id and name.
    private static let stampedKeys = ["callId", "from", "fromName"]

    /// Longest accepted `callId`.
    package static let maxCallIDLength = 128
    /// Longest accepted `reason` of a hangup or reject (PROTOCOL.md §8): it is stored and logged.
    package static let maxReasonLength = 64

    /// Whether `reason` is 1-64 characters of `[a-z0-9-]`.
    static func isValidReason(_ reason: String) -> Bool {
        let utf8 = reason.utf8
        return (1...maxReasonLength).contains(utf8.count)
            && utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }
    }

    /// Parses and validates a signal's `content`.
    package init(content: String) throws(SignalError) {
        let parsed: (value: JSONValue, members: [JSONMember])
        do {
            parsed = try JSONValue.parsingMembers(of: content)
        } catch {
            throw SignalError(.invalidSignal, "content is not valid JSON: \(error.message)")
        }
        guard case .object(let body) = parsed.value else {
            throw SignalError(.invalidSignal, "content must be a JSON object")
        }
        try self.init(body: body)
        source = (content, parsed.members)
    }

    /// Validates a signal given as a JSON object.
    package init(body: JSONObject) throws(SignalError) {
        guard let typeValue = body["type"] else { throw SignalError(.invalidSignal, "missing \"type\"") }
        guard case .string(let typeName) = typeValue else { throw SignalError(.invalidSignal, "\"type\" must be a string") }
        guard let type = SignalType(rawValue: typeName) else {
            throw SignalError(.unknownSignal, "unknown signal type \"\(typeName)\"")
        }
        self.type = type
        self.body = body

        switch body["callId"] {
        case nil, .null?:
            callId = nil
        case .string(let id)? where !id.isEmpty && id.utf8.count <= Self.maxCallIDLength:
            callId = id
        default:
            throw SignalError(.invalidSignal, "\"callId\" must be a non-empty string of at most \(Self.maxCallIDLength) bytes")
        }

        switch body["callType"] {
        case nil, .null?:
            callType = .audio
        case .string(let name)?:
            guard let parsed = CallType(wireName: name) else {
                throw SignalError(.invalidSignal, "\"callType\" must be \"audio\" or \"video\"")
            }
            callType = parsed
        default:
            throw SignalError(.invalidSignal, "\"callType\" must be \"audio\" or \"video\"")
        }

        if let reason = body["reason"], !reason.isString, reason != .null {
            throw SignalError(.invalidSignal, "\"reason\" must be a string")
        }
        if type == .callHangup || type == .callReject, case .string(let reason)? = body["reason"],
            !Self.isValidReason(reason)
        {
            throw SignalError(.invalidSignal, "\"reason\" must be 1-\(Self.maxReasonLength) characters of a-z, 0-9 and -")
        }
        try Self.validatePayload(of: type, in: body)
    }

    private static func validatePayload(of type: SignalType, in body: JSONObject) throws(SignalError) {
        switch type {
        case .offer, .answer:
            let key = type.rawValue
            guard case .object(let description)? = body[key],
                description["type"]?.isString == true, description["sdp"]?.isString == true
            else {
                throw SignalError(.invalidSignal, "\"\(key)\" must be an object with string \"type\" and \"sdp\"")
            }
        case .iceCandidate:
            guard case .object(let candidate)? = body["candidate"], candidate["candidate"]?.isString == true else {
                throw SignalError(.invalidSignal, "\"candidate\" must be an object with a string \"candidate\"")
            }
            if let mid = candidate["sdpMid"], !mid.isString, mid != .null {
                throw SignalError(.invalidSignal, "\"candidate.sdpMid\" must be a string or null")
            }
            if let index = candidate["sdpMLineIndex"], !index.isNumber, index != .null {
                throw SignalError(.invalidSignal, "\"candidate.sdpMLineIndex\" must be a number or null")
            }
        case .callInvite, .callAccept, .callReject, .callHangup, .callConnected:
            break
        }
    }

    /// The `reason` of a hangup or reject, or its default (`user-hangup`, `declined`; PROTOCOL.md §8):
    /// relayed and stored as the record's `end_reason`. `nil` for other signals.
    package var endReason: String? {
        switch type {
        case .callHangup: body["reason"]?.stringValue ?? "user-hangup"
        case .callReject: body["reason"]?.stringValue ?? "declined"
        default: nil
        }
    }

    /// The signal with `reason` set (a hangup's or reject's default, when it gave none).
    package func reasoned(_ reason: String) -> Signal {
        var signal = self
        signal.body["reason"] = .string(reason)
        signal.source = nil
        return signal
    }

    /// Stamps the sender (a client can never speak as someone else) and the call the signal belongs to.
    package mutating func stamp(sender: UserIdentity, callId: String) {
        self.callId = callId
        body["callId"] = .string(callId)
        body["from"] = .string(sender.id)
        body["fromName"] = sender.name.map(JSONValue.string)
    }

    /// The stamped JSON text to relay.
    package func serialized() -> String { JSONValue.object(body).serialized() }

    /// `message` carrying this signal stamped as sent by `sender` in call `callId`: what is relayed.
    package func relayed(in message: ChatMessage, from sender: UserIdentity, callId: String) -> ChatMessage {
        var relayed = message
        if let source {
            relayed.content = Self.stamping(source.text, members: source.members, sender: sender, callId: callId)
        } else {
            var signal = self
            signal.stamp(sender: sender, callId: callId)
            relayed.content = signal.serialized()
        }
        return relayed
    }

    /// The object `text` stamped: each stamped member takes the server's value where the client put
    /// it (a repeat is dropped), those the client left out follow, and every other member keeps the
    /// client's bytes (the strict parser accepted them). The same text as ``stamp(sender:callId:)`` then
    /// ``serialized()`` give for compact input, without writing the whole tree; otherwise the client's
    /// whitespace and escapes stay, and a key sent twice stays twice (readers take the last, as the
    /// server did).
    private static func stamping(_ text: String, members: [JSONMember], sender: UserIdentity, callId: String) -> String {
        var text = text
        return text.withUTF8 { utf8 in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(utf8.count + callId.utf8.count + 64)
            bytes.append(UInt8(ascii: "{"))
            var written: UInt8 = 0
            func append(_ stamp: Int) {
                written |= 1 << stamp
                guard let value = stamp == 0 ? callId : stamp == 1 ? sender.id : sender.name else { return }
                if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(stampedKeys[stamp], into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                JSONWriter.writeString(value, into: &bytes)
            }
            for member in members {
                if let stamp = stampedKeys.firstIndex(of: member.key) {
                    if written & 1 << stamp == 0 { append(stamp) }
                    continue
                }
                if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[member.span]))
            }
            for stamp in stampedKeys.indices where written & 1 << stamp == 0 { append(stamp) }
            bytes.append(UInt8(ascii: "}"))
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// Why a signal was refused before it reached the call logic.
package struct SignalError: Error, Sendable, Equatable {
    /// `invalid-signal` or `unknown-signal`.
    package let reason: ErrorReason
    /// A human-readable explanation, sent back in the `error` notice.
    package let message: String

    package init(_ reason: ErrorReason, _ message: String) {
        self.reason = reason
        self.message = message
    }
}
