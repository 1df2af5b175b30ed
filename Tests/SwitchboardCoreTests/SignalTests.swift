import SwitchboardCore
import SwitchboardProto
import Testing

/// The error a signal's `content` is refused with, or `nil` when it parses.
private func signalError(_ content: String) -> SignalError? {
    do {
        _ = try Signal(content: content)
        return nil
    } catch {
        return error
    }
}

private let alice = UserIdentity(id: "alice", name: "Alice", avatar: "https://example.com/a.png")!
private let nameless = UserIdentity(id: "bob")!

@Suite struct SignalParsingTests {
    /// A minimal valid `content` for each signal type.
    static func minimal(_ type: SignalType) -> String {
        switch type {
        case .offer: #"{"type":"offer","callId":"c1","offer":{"type":"offer","sdp":"v=0\r\n"}}"#
        case .answer: #"{"type":"answer","callId":"c1","answer":{"type":"answer","sdp":"v=0\r\n"}}"#
        case .iceCandidate:
            #"{"type":"ice-candidate","callId":"c1","candidate":{"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#
        case .callInvite: #"{"type":"call-invite","callId":"c1","callType":"video"}"#
        case .callAccept: #"{"type":"call-accept","callId":"c1"}"#
        case .callReject: #"{"type":"call-reject","callId":"c1","reason":"declined"}"#
        case .callHangup: #"{"type":"call-hangup","callId":"c1"}"#
        case .callConnected: #"{"type":"call-connected","callId":"c1"}"#
        }
    }

    @Test(arguments: SignalType.allCases)
    func everySignalTypeParses(type: SignalType) throws {
        let signal = try Signal(content: Self.minimal(type))
        #expect(signal.type == type)
        #expect(signal.callId == "c1")
        // Parsing alone does not rewrite the body.
        #expect(signal.serialized() == Self.minimal(type))
    }

    @Test(arguments: SignalType.allCases)
    func wireNamesAreTheProtocolNames(type: SignalType) {
        let names: [SignalType: String] = [
            .callInvite: "call-invite", .callAccept: "call-accept", .callReject: "call-reject",
            .callHangup: "call-hangup", .offer: "offer", .answer: "answer", .iceCandidate: "ice-candidate",
            .callConnected: "call-connected",
        ]
        #expect(type.rawValue == names[type])
        #expect(type.isNegotiation == [.offer, .answer, .iceCandidate].contains(type))
    }

    @Test func bodyInitializerValidatesTheSameWay() throws {
        let signal = try Signal(body: ["type": "call-hangup", "callId": "c2"])
        #expect(signal.type == .callHangup)
        #expect(signal.callId == "c2")
        #expect(throws: SignalError(.unknownSignal, #"unknown signal type "ring""#)) {
            try Signal(body: ["type": "ring"])
        }
    }

    @Test func callIdIsOptional() throws {
        #expect(try Signal(content: #"{"type":"call-hangup"}"#).callId == nil)
        #expect(try Signal(content: #"{"type":"call-hangup","callId":null}"#).callId == nil)
    }

    @Test func callTypeDefaultsToAudio() throws {
        #expect(try Signal(content: #"{"type":"call-invite"}"#).callType == .audio)
        #expect(try Signal(content: #"{"type":"call-invite","callType":null}"#).callType == .audio)
        #expect(try Signal(content: #"{"type":"call-invite","callType":"audio"}"#).callType == .audio)
        #expect(try Signal(content: #"{"type":"call-invite","callType":"video"}"#).callType == .video)
    }

    @Test func callIdLengthIsCountedInBytes() throws {
        let longest = String(repeating: "x", count: Signal.maxCallIDLength)
        #expect(try Signal(content: #"{"type":"call-hangup","callId":"\#(longest)"}"#).callId == longest)
        // 64 two-byte characters: exactly 128 bytes.
        let wide = String(repeating: "é", count: 64)
        #expect(try Signal(content: #"{"type":"call-hangup","callId":"\#(wide)"}"#).callId == wide)
    }

    @Test func nullableCandidateFieldsMayBeNullOrAbsent() throws {
        _ = try Signal(content: #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null}}"#)
        _ = try Signal(content: #"{"type":"ice-candidate","candidate":{"candidate":"c"}}"#)
        _ = try Signal(content: #"{"type":"ice-candidate","candidate":{"candidate":"","sdpMLineIndex":1.0}}"#)
    }

    @Test func reasonMayBeAStringOrNull() throws {
        _ = try Signal(content: #"{"type":"call-hangup","reason":"bye"}"#)
        _ = try Signal(content: #"{"type":"call-hangup","reason":null}"#)
        #expect(signalError(#"{"type":"call-hangup","reason":1}"#)?.reason == .invalidSignal)
        #expect(signalError(#"{"type":"call-hangup","reason":{"text":"bye"}}"#)?.reason == .invalidSignal)
    }

    @Test(arguments: [
        #"{"type":"call-transfer"}"#,
        #"{"type":"OFFER","offer":{"type":"offer","sdp":""}}"#,
        #"{"type":"call_invite"}"#,
        #"{"type":""}"#,
        #"{"type":"call-ringing","callId":"c1"}"#,
    ])
    func unknownTypeIsUnknownSignal(content: String) {
        let error = signalError(content)
        #expect(error?.reason == .unknownSignal)
        #expect(error?.message.isEmpty == false)
    }

    @Test(arguments: [
        // missing or non-string type
        #"{}"#, #"{"callId":"c1"}"#, #"{"type":1}"#, #"{"type":null}"#, #"{"type":["offer"]}"#,
        #"{"type":{"name":"offer"}}"#, #"{"type":true}"#,
        // not an object
        #"[]"#, #"["call-invite"]"#, #""call-invite""#, #"42"#, #"null"#, #"true"#,
        // not JSON
        "", " ", "{", #"{"type":"call-invite",}"#, "not json", #"{'type':'call-invite'}"#,
        #"{"type":"call-invite"} trailing"#,
    ])
    func malformedContentIsInvalidSignal(content: String) {
        let error = signalError(content)
        #expect(error?.reason == .invalidSignal)
        #expect(error?.message.isEmpty == false)
    }

    @Test(arguments: [
        #"{"type":"call-hangup","callId":""}"#,
        #"{"type":"call-hangup","callId":1}"#,
        #"{"type":"call-hangup","callId":true}"#,
        #"{"type":"call-hangup","callId":["c1"]}"#,
        #"{"type":"call-hangup","callId":{"id":"c1"}}"#,
        #"{"type":"call-invite","callId":"\#(String(repeating: "x", count: 129))"}"#,
        // 65 two-byte characters: 65 characters but 130 bytes
        #"{"type":"call-invite","callId":"\#(String(repeating: "é", count: 65))"}"#,
    ])
    func badCallIdIsInvalidSignal(content: String) {
        #expect(signalError(content)?.reason == .invalidSignal)
    }

    @Test(arguments: [
        #"{"type":"call-invite","callType":"screen"}"#,
        #"{"type":"call-invite","callType":"Video"}"#,
        #"{"type":"call-invite","callType":""}"#,
        #"{"type":"call-invite","callType":2}"#,
        #"{"type":"call-invite","callType":true}"#,
        #"{"type":"call-invite","callType":["video"]}"#,
    ])
    func badCallTypeIsInvalidSignal(content: String) {
        #expect(signalError(content)?.reason == .invalidSignal)
    }

    @Test(arguments: [
        #"{"type":"offer"}"#,
        #"{"type":"offer","offer":null}"#,
        #"{"type":"offer","offer":"v=0"}"#,
        #"{"type":"offer","offer":{}}"#,
        #"{"type":"offer","offer":{"type":"offer"}}"#,
        #"{"type":"offer","offer":{"sdp":"v=0"}}"#,
        #"{"type":"offer","offer":{"type":1,"sdp":"v=0"}}"#,
        #"{"type":"offer","offer":{"type":"offer","sdp":null}}"#,
        #"{"type":"offer","answer":{"type":"answer","sdp":"v=0"}}"#,
        #"{"type":"answer"}"#,
        #"{"type":"answer","answer":[]}"#,
        #"{"type":"answer","answer":{"type":"answer"}}"#,
        #"{"type":"answer","answer":{"type":"answer","sdp":0}}"#,
        #"{"type":"answer","offer":{"type":"offer","sdp":"v=0"}}"#,
    ])
    func sessionDescriptionWithoutTypeAndSdpIsInvalidSignal(content: String) {
        #expect(signalError(content)?.reason == .invalidSignal)
    }

    @Test(arguments: [
        #"{"type":"ice-candidate"}"#,
        #"{"type":"ice-candidate","candidate":null}"#,
        #"{"type":"ice-candidate","candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"}"#,
        #"{"type":"ice-candidate","candidate":{}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":null}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":1}}"#,
        #"{"type":"ice-candidate","candidate":{"sdpMid":"0","sdpMLineIndex":0}}"#,
    ])
    func iceCandidateWithoutCandidateStringIsInvalidSignal(content: String) {
        #expect(signalError(content)?.reason == .invalidSignal)
    }

    @Test(arguments: [
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":0}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":true}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":["0"]}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMLineIndex":"0"}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMLineIndex":false}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMLineIndex":{}}}"#,
    ])
    func badCandidateFieldTypesAreInvalidSignal(content: String) {
        #expect(signalError(content)?.reason == .invalidSignal)
    }

    @Test func errorsAreNotRaisedForPayloadsOfOtherTypes() throws {
        // A call-hangup carrying a junk "offer" is still a valid hang-up: payloads are checked per type.
        _ = try Signal(content: #"{"type":"call-hangup","offer":"junk","candidate":7}"#)
    }
}

@Suite struct SignalStampingTests {
    @Test func unknownFieldsAndKeyOrderSurviveStamping() throws {
        let content =
            #"{"x-first":{"nested":[1,2.50,null]},"type":"offer","offer":{"type":"offer","sdp":"v=0\r\n","x-sdp":true},"zeta":"z","callId":"c1","alpha":-0.0e0}"#
        var signal = try Signal(content: content)
        signal.stamp(sender: alice, callId: "c1")
        #expect(
            signal.serialized()
                == #"{"x-first":{"nested":[1,2.50,null]},"type":"offer","offer":{"type":"offer","sdp":"v=0\r\n","x-sdp":true},"zeta":"z","callId":"c1","alpha":-0.0e0,"from":"alice","fromName":"Alice"}"#
        )
        #expect(signal.body.keys == ["x-first", "type", "offer", "zeta", "callId", "alpha", "from", "fromName"])
    }

    @Test func stampOverwritesSpoofedSenderInPlace() throws {
        var signal = try Signal(
            content: #"{"from":"mallory","type":"call-hangup","fromName":"Mallory","reason":"bye","callId":"c7"}"#
        )
        signal.stamp(sender: alice, callId: "c7")
        #expect(signal.serialized() == #"{"from":"alice","type":"call-hangup","fromName":"Alice","reason":"bye","callId":"c7"}"#)
    }

    @Test func stampRemovesFromNameWhenTheSenderHasNoName() throws {
        var signal = try Signal(content: #"{"type":"call-hangup","fromName":"Mallory","from":"mallory","extra":1}"#)
        signal.stamp(sender: nameless, callId: "c3")
        #expect(signal.body["fromName"] == nil)
        #expect(signal.serialized() == #"{"type":"call-hangup","from":"bob","extra":1,"callId":"c3"}"#)
    }

    @Test func stampAddsTheCallIdTheServerResolved() throws {
        var signal = try Signal(content: #"{"type":"answer","answer":{"type":"answer","sdp":"s"}}"#)
        #expect(signal.callId == nil)
        signal.stamp(sender: alice, callId: "resolved")
        #expect(signal.callId == "resolved")
        #expect(
            signal.serialized()
                == #"{"type":"answer","answer":{"type":"answer","sdp":"s"},"callId":"resolved","from":"alice","fromName":"Alice"}"#
        )
    }

    @Test func stampedTextParsesBackToAnEquivalentSignal() throws {
        var signal = try Signal(content: #"{"type":"call-invite","callType":"video","x":{"y":[true]}}"#)
        signal.stamp(sender: alice, callId: "c9")
        let reparsed = try Signal(content: signal.serialized())
        #expect(reparsed.type == .callInvite)
        #expect(reparsed.callId == "c9")
        #expect(reparsed.callType == .video)
        #expect(reparsed.body == signal.body)
    }
}

/// A relayed signal is stamped into the client's bytes (``Signal/relayed(in:from:callId:)``), not
/// written again from the tree: it must say what stamping the tree says.
@Suite struct RelayedSignalTests {
    private func relayed(_ content: String, from sender: UserIdentity = alice, callId: String = "c1") throws -> String {
        var message = ChatMessage()
        message.content = content
        return try Signal(content: content).relayed(in: message, from: sender, callId: callId).content
    }

    private func treeStamped(_ content: String, from sender: UserIdentity = alice, callId: String = "c1") throws -> String {
        var signal = try Signal(content: content)
        signal.stamp(sender: sender, callId: callId)
        return signal.serialized()
    }

    @Test(arguments: [
        #"{"type":"ice-candidate","candidate":{"candidate":"candidate:1 1 UDP 2122252543 10.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
        #"{"from":"mallory","type":"call-hangup","fromName":"Mallory","reason":"bye","callId":"c7"}"#,
        #"{"type":"offer","offer":{"type":"offer","sdp":"v=0\r\n"},"callId":"old","x-app":{"n":[1,2.50,null]}}"#,
        #"{"type":"answer","answer":{"type":"answer","sdp":"s"},"fromName":"Mallory"}"#,
        #"{"callId":"c","type":"call-accept","from":"x","from":"y","fromName":null}"#,
    ])
    func compactInputGivesTheTreesText(content: String) throws {
        #expect(try relayed(content) == treeStamped(content))
        #expect(try relayed(content, from: nameless, callId: "c2") == treeStamped(content, from: nameless, callId: "c2"))
    }

    @Test func anEscapedKeyCannotSmuggleASender() throws {
        let text = try relayed(#"{"type":"call-hangup","\u0066rom":"mallory","fromN\u0061me":"Mallory","\u0063allId":"c9"}"#)
        let (value, members) = try JSONValue.parsingMembers(of: text)
        #expect(members.map(\.key) == ["type", "from", "fromName", "callId"])
        #expect(value.objectValue?["from"] == "alice")
        #expect(value.objectValue?["fromName"] == "Alice")
        #expect(value.objectValue?["callId"] == "c1")
    }

    @Test func whitespaceAndEscapesOfOtherMembersAreKept() throws {
        let content =
            " {\n \"type\" : \"offer\" ,\"offer\":{ \"type\":\"offer\", \"sdp\":\"\\u0076=0\" } ,"
            + " \"from\" : \"mallory\"\t} "
        let text = try relayed(content)
        #expect(
            text == #"{"type" : "offer","offer":{ "type":"offer", "sdp":"\u0076=0" },"#
                + #""from":"alice","callId":"c1","fromName":"Alice"}"#
        )
        #expect(try Signal(content: text).body == Signal(content: treeStamped(content)).body)
    }

    @Test func aDefaultReasonIsWrittenFromTheTree() throws {
        var message = ChatMessage()
        message.content = #"{"type":"call-hangup"}"#
        let signal = try Signal(content: message.content).reasoned("user-hangup")
        #expect(
            signal.relayed(in: message, from: alice, callId: "c1").content
                == #"{"type":"call-hangup","reason":"user-hangup","callId":"c1","from":"alice","fromName":"Alice"}"#
        )
    }
}

@Suite struct MessageStampingTests {
    @Test func stampOverwritesSenderAndFillsTimestamp() {
        var message = ChatMessage()
        message.from = "mallory"
        message.fromUsername = "Mallory"
        message.to = "bob"
        message.content = "hi"
        message.stamp(sender: alice, now: 1_700_000_000_123)
        #expect(message.from == "alice")
        #expect(message.fromUsername == "Alice")
        #expect(message.avatar == "https://example.com/a.png")
        #expect(message.timestamp == 1_700_000_000_123)
        #expect(message.to == "bob")
        #expect(message.content == "hi")
    }

    @Test func stampKeepsAClientTimestampAndClearsASpoofedName() {
        var message = ChatMessage()
        message.fromUsername = "Mallory"
        message.timestamp = 42
        message.stamp(sender: nameless, now: 1_700_000_000_123)
        #expect(message.from == "bob")
        #expect(message.fromUsername == "")
        #expect(message.timestamp == 42)
    }

    @Test(arguments: ["heatbeat", "heartbeat"])
    func heartbeatPingIsAnsweredWithPong(type: String) throws {
        var ping = ChatMessage()
        ping.type = type
        ping.content = "ping"
        let reply = try #require(ping.heartbeatReply)
        #expect(reply.type == type)
        #expect(reply.content == "pong")
    }

    @Test func otherMessagesAreNotHeartbeats() {
        var message = ChatMessage()
        message.type = "heartbeat"
        message.content = "hello"
        #expect(message.heartbeatReply == nil)
        message.type = "text"
        message.content = "ping"
        #expect(message.heartbeatReply == nil)
    }
}

/// Hangup and reject reasons (PROTOCOL.md §8: at most 64 characters of `[a-z0-9-]`), and the call id a
/// client chose for its invite (PROTOCOL.md §9).
@Suite struct SignalReasonAndCallIDTests {
    @Test(arguments: ["call-hangup", "call-reject"])
    func validReasonsPass(type: String) {
        for reason in ["user-hangup", "ice-failed", "busy", "declined", String(repeating: "a", count: 64), "4xx-0"] {
            #expect(signalError(#"{"type":"\#(type)","reason":"\#(reason)"}"#) == nil, "\(reason)")
        }
    }

    @Test(arguments: ["call-hangup", "call-reject"])
    func invalidReasonsAreRefused(type: String) {
        for reason in [
            "", String(repeating: "a", count: 65), "Ice-Failed", "ice_failed", "ice failed", "é",
            String(repeating: "x", count: 900_000),
        ] {
            #expect(signalError(#"{"type":"\#(type)","reason":"\#(reason)"}"#)?.reason == .invalidSignal, "\(reason.prefix(20))")
        }
    }

    @Test func otherSignalsKeepTheirReasonAsAnUnknownField() {
        #expect(signalError(#"{"type":"offer","offer":{"type":"offer","sdp":"v=0"},"reason":"Anything Goes"}"#) == nil)
    }

    @Test func clientChosenInviteCallID() {
        func message(_ content: String, contentType: Int32 = 6) -> ChatMessage {
            var message = ChatMessage()
            message.to = "bob"
            message.contentType = contentType
            message.content = content
            return message
        }
        #expect(message(#"{"type":"call-invite","callId":"c-1"}"#).clientChosenInviteCallID == "c-1")
        #expect(message(#"{ "callId" : "c-2", "type" : "call-invite" }"#).clientChosenInviteCallID == "c-2")
        #expect(message(#"{"type":"call-invite"}"#).clientChosenInviteCallID == nil, "the server picks the id")
        #expect(message(#"{"type":"call-hangup","callId":"call-invite"}"#).clientChosenInviteCallID == nil)
        #expect(message(#"{"type":"call-invite","callId":"c-3"}"#, contentType: 1).clientChosenInviteCallID == nil)
        #expect(message(#"{"type":"call-invite","callId":"#).clientChosenInviteCallID == nil, "invalid: the engine answers")
        #expect(message(#"{"type":"call\u002dinvite","callId":"c-4"}"#).clientChosenInviteCallID == "c-4", "escaped type name")
        #expect(message(#"{"type":"ice-candidate","callId":"c-5"}"#).clientChosenInviteCallID == nil)
    }

    @Test func theInviteScanFindsTheNameAnywhereAndOnlyIt() {
        #expect(ChatMessage.mentionsInvite("call-invite"))
        #expect(ChatMessage.mentionsInvite(#"{"candidate":"c c cc call-invit","x":"call-invite"}"#), "at the very end")
        #expect(ChatMessage.mentionsInvite(#"{"type":"call\u002dinvite"}"#), "a backslash: maybe escaped")
        #expect(!ChatMessage.mentionsInvite(""))
        #expect(!ChatMessage.mentionsInvite("call-invit"), "shorter than the name")
        #expect(!ChatMessage.mentionsInvite(#"{"type":"ice-candidate","candidate":{"candidate":"candidate:1 1 UDP"}}"#))
        #expect(!ChatMessage.mentionsInvite(String(repeating: "call-invit", count: 50)))
    }
}
