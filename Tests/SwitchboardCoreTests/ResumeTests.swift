import SwitchboardProto
import Testing

@testable import SwitchboardCore

/// Reconnecting during a call (PROTOCOL.md §8): what is sent to a party who is away within its grace
/// is kept, and delivered after `call-resumed` when they come back (in two-node mode, on the other node).
@Suite struct ResumeTests {
    /// `user` connects again, on the other node when there are two.
    func reconnect(_ h: Harness, _ user: String, after old: Peer) async -> Peer {
        let index = h.boards.firstIndex { $0 === old.board }!
        let board = h.boards[(index + 1) % h.boards.count]
        let outlet = FakeOutlet()
        let session = board.connect(UserIdentity(id: user)!, connection: Harness.connection(of: user), outlet: outlet)
        await h.settle()
        return Peer(session: session, outlet: outlet, board: board)
    }

    /// Alice and bob in an active call `c1`; bob's socket has closed.
    func bobAwayFromACall(_ mode: EngineMode) async throws -> (Harness, alice: Peer, bob: Peer) {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.establish(alice, bob)
        await h.disconnect(bob)
        return (h, alice, bob)
    }

    func candidate(_ number: Int) -> String {
        #"{"type":"ice-candidate","callId":"c1","candidate":{"candidate":"candidate:\#(number)","sdpMid":"0","sdpMLineIndex":0}}"#
    }

    /// The type and candidate number of each message.
    func summary(_ messages: [ChatMessage]) throws -> [String] {
        try messages.map { message in
            let content = try body(message)
            let type = content["type"]?.stringValue ?? "?"
            guard let candidate = content["candidate"]?.objectValue?["candidate"]?.stringValue else { return type }
            return "\(type) \(candidate.dropFirst("candidate:".count))"
        }
    }

    @Test(arguments: EngineMode.allCases) func signalsForAnAbsentPartyFollowCallResumedInOrder(mode: EngineMode) async throws {
        let (h, alice, bob) = try await bobAwayFromACall(mode)
        for number in 0..<5 { alice.board.receive(signalMessage(to: "bob", candidate(number)), from: alice.session) }
        await h.settle()
        #expect(alice.outlet.take().isEmpty)  // kept, not answered offline

        let bob2 = await reconnect(h, "bob", after: bob)
        let frames = bob2.outlet.take()
        #expect(try summary(frames) == ["call-resumed"] + (0..<5).map { "ice-candidate \($0)" })
        let resumed = try notice(frames.first, to: "bob")
        #expect(resumed == ["type": "call-resumed", "callId": "c1", "peer": "alice", "state": "active"])
        #expect(frames.dropFirst().allSatisfy { $0.from == "alice" })
        let reconnected = alice.outlet.take()
        #expect(reconnected.count == 1)
        #expect(try notice(reconnected.first, to: "alice") == ["type": "peer-reconnected", "callId": "c1"])

        // Newer signals go straight to the new session; nothing is kept any more.
        await h.signal(candidate(5), from: alice, to: "bob")
        #expect(try summary(bob2.outlet.take()) == ["ice-candidate 5"])
        #expect(h.board.localKept.awayCount == 0)
    }

    @Test(arguments: EngineMode.allCases) func aRingingCallResumesRingingAndCanBeAccepted(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob)
        await h.disconnect(bob)
        let bob2 = await reconnect(h, "bob", after: bob)
        #expect(
            try notice(bob2.outlet.take().first, to: "bob") == [
                "type": "call-resumed", "callId": "c1", "peer": "alice", "state": "ringing",
            ]
        )
        #expect(try notice(alice.outlet.take().first, to: "alice")["type"] == "peer-reconnected")
        await h.signal(#"{"type":"call-accept","callId":"c1"}"#, from: bob2, to: "alice")
        #expect(try body(try #require(alice.outlet.take().first))["type"] == "call-accept")
    }

    @Test(arguments: EngineMode.allCases) func beyondWhatIsKeptTheOldestGivesWayAndItsSenderIsTold(mode: EngineMode) async throws
    {
        let (h, alice, bob) = try await bobAwayFromACall(mode)
        let limit = KeptSignalLimits.standard.count
        for number in 0..<(limit + 4) {
            alice.board.receive(signalMessage(to: "bob", candidate(number)), from: alice.session)
        }
        await h.settle()
        let errors = alice.outlet.take()
        #expect(errors.count == 4)
        for error in errors {
            let content = try notice(error, to: "alice")
            #expect(content["type"] == "error")
            #expect(content["reason"] == "offline")
            #expect(content["callId"] == "c1")
        }

        let bob2 = await reconnect(h, "bob", after: bob)
        let frames = try summary(bob2.outlet.take())
        #expect(
            frames == ["call-resumed"] + (4..<(limit + 4)).map { "ice-candidate \($0)" },
            "\(frames.prefix(8)) … \(frames.suffix(4))"
        )
    }

    @Test(arguments: EngineMode.allCases) func whatIsKeptIsBoundedInBytesToo(mode: EngineMode) async throws {
        let (h, alice, bob) = try await bobAwayFromACall(mode)
        // 24 offers of 64 KiB: 16 fit into 1 MiB with their addresses, so 8 or 9 give way.
        let sdp = String(repeating: "a", count: 64 << 10)
        for _ in 0..<24 {
            let offer = #"{"type":"offer","callId":"c1","offer":{"type":"offer","sdp":"\#(sdp)"}}"#
            alice.board.receive(signalMessage(to: "bob", offer), from: alice.session)
        }
        await h.settle()
        let gaveWay = alice.outlet.take().count
        let bob2 = await reconnect(h, "bob", after: bob)
        let kept = bob2.outlet.take().dropFirst()
        #expect(kept.count + gaveWay == 24)
        #expect(kept.map(\.content.utf8.count).reduce(0, +) <= KeptSignalLimits.standard.bytes)
        #expect(kept.count >= 15)
    }

    @Test(arguments: EngineMode.allCases) func aHangupWhileAwayIsDeliveredWithoutCallResumed(mode: EngineMode) async throws {
        let (h, alice, bob) = try await bobAwayFromACall(mode)
        await h.signal(candidate(0), from: alice, to: "bob")
        await h.signal(#"{"type":"call-hangup","callId":"c1"}"#, from: alice, to: "bob")
        #expect(alice.outlet.take().isEmpty)

        let bob2 = await reconnect(h, "bob", after: bob)
        #expect(try summary(bob2.outlet.take()) == ["ice-candidate 0", "call-hangup"])
        #expect(alice.outlet.messages.isEmpty)  // no peer-reconnected: there is no call
        // The node bob left forgets its copy of the call when his grace there runs out.
        for timer in h.graceTimers { timer.fire() }
        await h.settle()
        #expect(alice.outlet.messages.isEmpty)
        #expect(h.callCount == 0)
    }

    @Test(arguments: EngineMode.allCases) func aRingTimeoutWhileAwayIsDeliveredOnReturn(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob)
        await h.disconnect(bob)
        #expect(try #require(h.ringTimers.first).fire())
        await h.settle()
        #expect(try notice(alice.outlet.take().first, to: "alice")["reason"] == "timeout")
        let bob2 = await reconnect(h, "bob", after: bob)
        let frames = bob2.outlet.take()
        #expect(frames.count == 1)
        #expect(try notice(frames.first, to: "bob") == ["type": "call-hangup", "callId": "c1", "reason": "timeout"])
    }

    @Test(arguments: EngineMode.allCases) func afterTheGraceNothingIsKept(mode: EngineMode) async throws {
        let (h, alice, bob) = try await bobAwayFromACall(mode)
        await h.signal(candidate(0), from: alice, to: "bob")
        #expect(try #require(h.graceTimers.first).fire())
        await h.settle()
        #expect(try notice(alice.outlet.take().first, to: "alice")["reason"] == "peer-disconnected")
        await h.signal(candidate(1), from: alice, to: "bob")
        try expectError(alice.outlet.take(), to: "alice", reason: "no-call")

        let bob2 = await reconnect(h, "bob", after: bob)
        #expect(bob2.outlet.messages.isEmpty)
        #expect(alice.outlet.messages.isEmpty)
        #expect(h.board.localKept.awayCount == 0)
    }

    /// Alone, what is kept expires by the engine's clock (Redis expires its keys itself: test_resume.py).
    @Test func whatIsKeptLastsTheGraceEvenAfterTheCallEnded() async throws {
        let (h, alice, bob) = try await bobAwayFromACall(.singleNode)
        await h.signal(#"{"type":"call-hangup","callId":"c1"}"#, from: alice, to: "bob")
        #expect(h.board.localKept.awayCount == 1)
        h.clock.advance(by: .seconds(10))
        let bob2 = await reconnect(h, "bob", after: bob)
        #expect(bob2.outlet.messages.isEmpty)
        #expect(h.board.localKept.awayCount == 0)
    }

    @Test(arguments: EngineMode.allCases) func plainMessagesToAnAbsentPartyAreStillOffline(mode: EngineMode) async throws {
        let (h, alice, bob) = try await bobAwayFromACall(mode)
        await h.send(textMessage(to: "bob", "hi"), from: alice)
        try expectError(alice.outlet.take(), to: "alice", reason: "offline")
        let bob2 = await reconnect(h, "bob", after: bob)
        #expect(try summary(bob2.outlet.take()) == ["call-resumed"])
    }

    /// Every connection is marked resuming until its kept signals are out (`State.resuming`): a client
    /// that connects, is replaced, reconnects during its call or closes before its arrival is through, in
    /// a loop, leaves no mark behind (the set is bounded by the sessions).
    @Test(arguments: EngineMode.allCases) func resumingMarksDoNotOutliveTheirSessions(mode: EngineMode) async throws {
        let (h, alice, firstBob) = try await bobAwayFromACall(mode)
        var bob = firstBob
        func marks() -> (resuming: Int, queues: Int) {
            let states = h.boards.map { $0.state.withLock { ($0.resuming.count, $0.resumeQueues.count) } }
            return (states.map(\.0).reduce(0, +), states.map(\.1).reduce(0, +))
        }
        for round in 0..<50 {
            await h.signal(candidate(round), from: alice, to: "bob")
            bob = await reconnect(h, "bob", after: bob)
            _ = await h.connect("carol")  // replaces the carol of the round before
            // Closed before its arrival is through (in a cluster, presence has not answered yet).
            let board = h.boards[round % h.boards.count]
            board.disconnect(
                board.connect(UserIdentity(id: "dave")!, connection: Harness.connection(of: "dave"), outlet: FakeOutlet())
            )
            await h.settle()
            #expect(marks() == (0, 0), "round \(round)")
            await h.disconnect(bob)
        }
        for session in h.sessions {
            for board in h.boards { board.disconnect(session) }
        }
        await h.settle()
        #expect(h.sessionCount == 0)
        #expect(marks() == (0, 0))
    }
}
