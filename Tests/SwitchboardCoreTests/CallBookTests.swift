import SwitchboardCore
import Testing

/// Whether `result` is a `NoCall` refusal.
private func isNoCall(_ result: Result<CallTransition, NoCall>) -> Bool {
    if case .failure = result { return true }
    return false
}

private struct SetupFailed: Error {}

/// A book with one call `c1`, alice → bob, ringing since t=1000.
private func ringingBook(callType: CallType = .audio) throws -> (CallBook, Call) {
    var book = CallBook()
    let call = try book.invite(callId: "c1", caller: "alice", callee: "bob", callType: callType, now: 1000).get()
    return (book, call)
}

/// A book with one call `c1`, alice → bob, accepted at t=2000.
private func activeBook() throws -> (CallBook, Call) {
    var book = try ringingBook().0
    guard case .success(.accepted(let call)) = book.apply(.callAccept, from: "bob", to: "alice", callId: "c1", now: 2000) else {
        throw SetupFailed()
    }
    return (book, call)
}

@Suite struct CallBookInviteTests {
    @Test func inviteStartsRinging() throws {
        var book = CallBook()
        let call = try book.invite(callId: "c1", caller: "alice", callee: "bob", callType: .video, now: 1000).get()
        #expect(call.id == "c1")
        #expect(call.caller == "alice")
        #expect(call.callee == "bob")
        #expect(call.callType == .video)
        #expect(call.state == .ringing)
        #expect(call.createdAt == 1000)
        #expect(call.startedAt == nil)
        #expect(book.count == 1)
        #expect(book.call(id: "c1") == call)
        #expect(book.call(of: "alice") == call)
        #expect(book.call(of: "bob") == call)
        #expect(book.call(of: "carol") == nil)
        #expect(book.call(id: "c2") == nil)
    }

    @Test func callerCannotCallThemself() {
        var book = CallBook()
        #expect(book.invite(callId: "c1", caller: "alice", callee: "alice", callType: .audio, now: 1) == .failure(.forbidden))
        #expect(book.count == 0)
        #expect(book.call(of: "alice") == nil)
    }

    @Test(arguments: [
        ("alice", "carol"),  // caller already in a call (as caller)
        ("bob", "carol"),  // caller already in a call (as callee)
        ("carol", "alice"),  // callee already in a call (as caller)
        ("carol", "bob"),  // callee already in a call (as callee)
        // ("bob", "alice"), calling back while the call rings, is glare (GlareTests).
        ("alice", "bob"),  // both, calling again
    ])
    func busyWhenEitherPartyIsInACall(caller: String, callee: String) throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(book.invite(callId: "c2", caller: caller, callee: callee, callType: .audio, now: 5) == .failure(.busy))
        #expect(book.count == 1)
        #expect(book.call(of: "alice") == original)
        #expect(book.call(of: "carol") == nil)
    }

    @Test func busyAlsoWhileActive() throws {
        var book = try activeBook().0
        #expect(book.invite(callId: "c2", caller: "carol", callee: "bob", callType: .audio, now: 5) == .failure(.busy))
    }

    @Test func duplicateCallIdIsRefused() throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(
            book.invite(callId: "c1", caller: "carol", callee: "dave", callType: .audio, now: 5) == .failure(.duplicateCallID)
        )
        #expect(book.count == 1)
        #expect(book.call(id: "c1") == original)
        #expect(book.call(of: "carol") == nil)
        #expect(book.call(of: "dave") == nil)
    }

    @Test func independentPairsMayCallAtTheSameTime() throws {
        var book = try ringingBook().0
        let other = try book.invite(callId: "c2", caller: "carol", callee: "dave", callType: .video, now: 5).get()
        #expect(book.count == 2)
        #expect(book.call(of: "dave") == other)
        #expect(book.call(of: "alice")?.id == "c1")
    }
}

@Suite struct CallBookTransitionTests {
    // MARK: accept

    @Test func calleeAcceptsWhileRinging() throws {
        var book = try ringingBook().0
        let result = book.apply(.callAccept, from: "bob", to: "alice", callId: "c1", now: 2000)
        guard case .success(.accepted(let call)) = result else {
            Issue.record("expected accepted, got \(result)")
            return
        }
        #expect(call.state == .active)
        #expect(call.startedAt == 2000)
        #expect(call.createdAt == 1000)
        #expect(book.call(id: "c1") == call)
        #expect(book.call(of: "alice")?.state == .active)
    }

    @Test func callerCannotAccept() throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(isNoCall(book.apply(.callAccept, from: "alice", to: "bob", callId: "c1", now: 2000)))
        #expect(book.call(id: "c1") == original)
    }

    @Test func acceptWhenActiveIsNoCall() throws {
        let (start, active) = try activeBook()
        var book = start
        #expect(isNoCall(book.apply(.callAccept, from: "bob", to: "alice", callId: "c1", now: 3000)))
        #expect(book.call(id: "c1") == active)
        #expect(book.call(id: "c1")?.startedAt == 2000)
    }

    // MARK: reject

    @Test func calleeRejectsWhileRinging() throws {
        let (start, original) = try ringingBook()
        var book = start
        let result = book.apply(.callReject, from: "bob", to: "alice", callId: "c1", now: 2000)
        #expect(result == .success(.ended(original, status: .rejected)))
        #expect(book.count == 0)
        #expect(book.call(of: "alice") == nil)
        #expect(book.call(of: "bob") == nil)
    }

    @Test func callerCannotReject() throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(isNoCall(book.apply(.callReject, from: "alice", to: "bob", callId: "c1", now: 2000)))
        #expect(book.call(id: "c1") == original)
    }

    @Test func rejectWhenActiveIsNoCall() throws {
        let (start, active) = try activeBook()
        var book = start
        #expect(isNoCall(book.apply(.callReject, from: "bob", to: "alice", callId: "c1", now: 3000)))
        #expect(book.call(id: "c1") == active)
    }

    // MARK: hangup

    @Test(arguments: [("alice", "bob"), ("bob", "alice")])
    func eitherPartyHangsUpWhileRinging(sender: String, recipient: String) throws {
        let (start, original) = try ringingBook()
        var book = start
        let result = book.apply(.callHangup, from: sender, to: recipient, callId: "c1", now: 1500)
        #expect(result == .success(.ended(original, status: .hungUp)))
        #expect(book.count == 0)
    }

    @Test(arguments: [("alice", "bob"), ("bob", "alice")])
    func eitherPartyHangsUpWhileActive(sender: String, recipient: String) throws {
        let (start, active) = try activeBook()
        var book = start
        let result = book.apply(.callHangup, from: sender, to: recipient, callId: "c1", now: 9000)
        #expect(result == .success(.ended(active, status: .hungUp)))
        #expect(book.count == 0)
        #expect(book.call(of: "alice") == nil)
        #expect(book.call(of: "bob") == nil)
    }

    @Test func hangupOfAnEndedCallIsNoCall() throws {
        var book = try activeBook().0
        _ = book.apply(.callHangup, from: "alice", to: "bob", callId: "c1", now: 9000)
        #expect(isNoCall(book.apply(.callHangup, from: "bob", to: "alice", callId: "c1", now: 9001)))
        #expect(isNoCall(book.apply(.callHangup, from: "bob", to: "alice", callId: nil, now: 9001)))
    }

    // MARK: negotiation

    @Test(arguments: [SignalType.offer, .answer, .iceCandidate])
    func negotiationRelaysWhileRinging(type: SignalType) throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(book.apply(type, from: "alice", to: "bob", callId: "c1", now: 1100) == .success(.relayed(original)))
        #expect(book.apply(type, from: "bob", to: "alice", callId: "c1", now: 1200) == .success(.relayed(original)))
        #expect(book.call(id: "c1") == original)
    }

    @Test(arguments: [SignalType.offer, .answer, .iceCandidate])
    func negotiationRelaysWhileActive(type: SignalType) throws {
        let (start, active) = try activeBook()
        var book = start
        #expect(book.apply(type, from: "alice", to: "bob", callId: "c1", now: 2100) == .success(.relayed(active)))
        #expect(book.apply(type, from: "bob", to: "alice", callId: nil, now: 2200) == .success(.relayed(active)))
        #expect(book.call(id: "c1") == active)
    }

    @Test func inviteDoesNotApplyToACall() throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(isNoCall(book.apply(.callInvite, from: "alice", to: "bob", callId: "c1", now: 1100)))
        #expect(book.call(id: "c1") == original)
    }

    // MARK: matching

    @Test(arguments: SignalType.allCases.filter { $0 != .callInvite })
    func signalNamingAnotherPairsCallIsNoCall(type: SignalType) throws {
        var book = try ringingBook().0
        let other = try book.invite(callId: "c2", caller: "carol", callee: "dave", callType: .audio, now: 5).get()
        // carol → dave naming alice and bob's call
        #expect(isNoCall(book.apply(type, from: "dave", to: "carol", callId: "c1", now: 6)))
        // alice → bob naming carol and dave's call
        #expect(isNoCall(book.apply(type, from: "alice", to: "bob", callId: "c2", now: 6)))
        // an outsider naming a call and one of its parties
        #expect(isNoCall(book.apply(type, from: "mallory", to: "bob", callId: "c1", now: 6)))
        #expect(book.call(id: "c2") == other)
        #expect(book.count == 2)
    }

    @Test func signalNamingAnUnknownCallIsNoCall() throws {
        var book = try ringingBook().0
        #expect(isNoCall(book.apply(.callHangup, from: "alice", to: "bob", callId: "nope", now: 6)))
        #expect(book.count == 1)
    }

    @Test func signalWithoutCallIdFindsTheCallBetweenTheTwoUsers() throws {
        let (start, ringing) = try ringingBook()
        var book = start
        let other = try book.invite(callId: "c2", caller: "carol", callee: "dave", callType: .audio, now: 5).get()
        #expect(book.apply(.offer, from: "alice", to: "bob", callId: nil, now: 6) == .success(.relayed(ringing)))
        let accepted = book.apply(.callAccept, from: "dave", to: "carol", callId: nil, now: 7)
        guard case .success(.accepted(let call)) = accepted else {
            Issue.record("expected accepted, got \(accepted)")
            return
        }
        #expect(call.id == other.id)
        #expect(
            book.apply(.callHangup, from: "bob", to: "alice", callId: nil, now: 8) == .success(.ended(ringing, status: .hungUp))
        )
        #expect(book.call(id: "c2")?.state == .active)
    }

    @Test func signalWithoutCallIdAndNoCallIsNoCall() {
        var book = CallBook()
        #expect(isNoCall(book.apply(.offer, from: "alice", to: "bob", callId: nil, now: 6)))
        #expect(isNoCall(book.apply(.callHangup, from: "alice", to: "bob", callId: nil, now: 6)))
    }

    @Test(arguments: SignalType.allCases.filter { $0 != .callInvite })
    func wrongRecipientIsNoCall(type: SignalType) throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(isNoCall(book.apply(type, from: "bob", to: "carol", callId: "c1", now: 6)))
        #expect(isNoCall(book.apply(type, from: "bob", to: "carol", callId: nil, now: 6)))
        #expect(isNoCall(book.apply(type, from: "bob", to: "bob", callId: "c1", now: 6)))
        #expect(isNoCall(book.apply(type, from: "alice", to: "alice", callId: nil, now: 6)))
        #expect(book.call(id: "c1") == original)
    }

    // MARK: timers and departures

    @Test func expireRingingEndsARingingCall() throws {
        let (start, original) = try ringingBook()
        var book = start
        #expect(book.expireRinging(callId: "c1") == original)
        #expect(book.count == 0)
        #expect(book.call(of: "alice") == nil)
        #expect(book.call(of: "bob") == nil)
        #expect(book.expireRinging(callId: "c1") == nil)
    }

    @Test func expireRingingLeavesAnActiveCallAlone() throws {
        let (start, active) = try activeBook()
        var book = start
        #expect(book.expireRinging(callId: "c1") == nil)
        #expect(book.call(id: "c1") == active)
    }

    @Test func expireRingingOfAnUnknownCallIsNil() {
        var book = CallBook()
        #expect(book.expireRinging(callId: "c1") == nil)
    }

    @Test(arguments: ["alice", "bob"])
    func abandonEndsTheCallOfTheDepartedUser(user: String) throws {
        let (start, active) = try activeBook()
        var book = start
        #expect(book.abandon(by: user) == active)
        #expect(book.count == 0)
        #expect(book.abandon(by: user) == nil)
    }

    @Test func abandonWhileRinging() throws {
        let (start, ringing) = try ringingBook()
        var book = start
        #expect(book.abandon(by: "bob") == ringing)
        #expect(book.count == 0)
    }

    @Test func abandonByAnOutsiderIsNil() throws {
        var book = try ringingBook().0
        #expect(book.abandon(by: "carol") == nil)
        #expect(book.count == 1)
    }

    // MARK: after the end

    enum Ending: String, CaseIterable, Sendable {
        case reject, hangupByCaller, hangupByCallee, hangupWhileActive, expire, abandon
    }

    @Test(arguments: Ending.allCases)
    func afterTheEndBothUsersAreFree(ending: Ending) throws {
        var book = try ringingBook().0
        switch ending {
        case .reject: _ = book.apply(.callReject, from: "bob", to: "alice", callId: "c1", now: 2)
        case .hangupByCaller: _ = book.apply(.callHangup, from: "alice", to: "bob", callId: "c1", now: 2)
        case .hangupByCallee: _ = book.apply(.callHangup, from: "bob", to: "alice", callId: nil, now: 2)
        case .hangupWhileActive:
            _ = book.apply(.callAccept, from: "bob", to: "alice", callId: "c1", now: 2)
            _ = book.apply(.callHangup, from: "bob", to: "alice", callId: "c1", now: 3)
        case .expire: _ = book.expireRinging(callId: "c1")
        case .abandon: _ = book.abandon(by: "alice")
        }
        #expect(book.count == 0)
        #expect(book.call(of: "alice") == nil)
        #expect(book.call(of: "bob") == nil)
        #expect(book.call(id: "c1") == nil)
        // Both can call anyone again, each other included, even reusing the id.
        let again = try book.invite(callId: "c1", caller: "bob", callee: "alice", callType: .video, now: 10).get()
        #expect(again.caller == "bob")
        #expect(again.state == .ringing)
        _ = book.apply(.callHangup, from: "alice", to: "bob", callId: nil, now: 11)
        _ = try book.invite(callId: "c3", caller: "alice", callee: "carol", callType: .audio, now: 12).get()
        _ = try book.invite(callId: "c4", caller: "dave", callee: "bob", callType: .audio, now: 13).get()
        #expect(book.count == 2)
    }
}

@Suite struct CallRecordSnapshotTests {
    @Test func recordOfARingingCall() throws {
        let (_, call) = try ringingBook(callType: .video)
        let record = call.record(status: .invite, now: 1000)
        #expect(
            record
                == CallRecord(
                    callId: "c1",
                    callerId: "alice",
                    calleeId: "bob",
                    callType: .video,
                    status: .invite,
                    startTime: nil,
                    endTime: nil,
                    duration: 0,
                    endReason: nil,
                    createdAt: 1000,
                    updatedAt: 1000
                )
        )
    }

    @Test func durationIsWholeSecondsFromStartToEnd() throws {
        let (_, call) = try activeBook()
        let record = call.record(status: .hungUp, endedAt: 2000 + 61_999, endReason: "bye", now: 64_000)
        #expect(record.startTime == 2000)
        #expect(record.endTime == 63_999)
        #expect(record.duration == 61)
        #expect(record.endReason == "bye")
        #expect(record.createdAt == 1000)
        #expect(record.updatedAt == 64_000)
    }

    @Test func callThatNeverStartedHasNoDuration() throws {
        let (_, call) = try ringingBook()
        let record = call.record(status: .missed, endedAt: 61_000, endReason: "timeout", now: 61_000)
        #expect(record.startTime == nil)
        #expect(record.endTime == 61_000)
        #expect(record.duration == 0)
    }

    @Test func statusAndCallTypeCodes() {
        #expect(CallStatus.allCases.map(\.rawValue) == [0, 1, 2, 3, 4, 5])
        #expect([CallStatus.invite, .accepted, .rejected, .hungUp, .missed, .failed].map(\.rawValue) == [0, 1, 2, 3, 4, 5])
        #expect(CallType.audio.rawValue == 1)
        #expect(CallType.video.rawValue == 2)
        #expect(CallType(wireName: "audio") == .audio)
        #expect(CallType(wireName: "video") == .video)
        #expect(CallType(wireName: "Video") == nil)
        #expect(CallType.video.wireName == "video")
    }
}
