import SwitchboardCore
import Synchronization
import Testing

/// Blocks and the invite permission hook (PROTOCOL.md §10), in every engine mode.
@Suite struct PermissionTests {
    @Test(arguments: EngineMode.allCases) func aBlockRefusesInvitesAndMessagesOneWay(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        #expect(try await h.board.blocks.block("alice", by: "bob") == .blocked)
        await h.send(textMessage(to: "bob", "hi"), from: alice)
        try expectError(alice.outlet.take(), to: "alice", reason: "forbidden")
        await h.signal(#"{"type":"call-invite","callId":"c1"}"#, from: alice, to: "bob")
        let failed = try notice(alice.outlet.take().first, to: "alice")
        #expect(failed["reason"] == "forbidden")
        #expect(failed["type"] == "call-failed")
        #expect(bob.outlet.messages.isEmpty)
        #expect(h.callCount == 0)
        // bob still reaches alice; lifted, alice reaches bob.
        await h.send(textMessage(to: "alice", "hello"), from: bob)
        #expect(alice.outlet.take().map(\.content) == ["hello"])
        try await h.board.blocks.unblock("alice", by: "bob")
        await h.send(textMessage(to: "bob", "again"), from: alice)
        #expect(bob.outlet.take().map(\.content) == ["again"])
    }

    @Test(arguments: EngineMode.allCases) func theFirstCallConnectedIsACallEvent(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.establish(alice, bob)
        for (party, peer) in [(bob, "alice"), (alice, "bob"), (bob, "alice")] {
            await h.signal(#"{"type":"call-connected","callId":"c1"}"#, from: party, to: peer)
        }
        let connected = h.events.filter { $0.name == .connected }
        #expect(connected.count == 1)
        #expect(connected.first?.callId == "c1" && connected.first?.connection == Harness.connection(of: "bob"))
        #expect(CallEvent.Name.connected.rawValue == "webrtc_call_connected")
    }

    @Test(arguments: EngineMode.allCases) func aBlockListIsIdempotentSortedAndBounded(mode: EngineMode) async throws {
        let h = try await Harness(mode, maxBlocksPerUser: 2)
        let blocks = h.board.blocks
        #expect(try await blocks.block("zed", by: "owner") == .blocked)
        #expect(try await blocks.block("zed", by: "owner") == .blocked)
        #expect(try await blocks.block("amy", by: "owner") == .blocked)
        #expect(try await blocks.block("bob", by: "owner") == .full)
        #expect(try await blocks.block("amy", by: "owner") == .blocked)  // there already: no addition
        #expect(try await blocks.blocked(by: "owner") == ["amy", "zed"])
        #expect(try await blocks.blocked(by: "someone else").isEmpty)
        try await blocks.unblock("zed", by: "owner")
        try await blocks.unblock("zed", by: "owner")
        #expect(try await blocks.block("bob", by: "owner") == .blocked)
        #expect(try await blocks.blocked(by: "owner") == ["amy", "bob"])
        // Every node sees the same list.
        for board in h.boards { #expect(try await board.blocks.blocked(by: "owner") == ["amy", "bob"]) }
    }

    @Test(arguments: EngineMode.allCases) func aDeniedInviteHoldsOnlyItsCallerAndEndsForbidden(mode: EngineMode) async throws {
        let backend = HeldPermission()
        let h = try await Harness(mode, permission: backend)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        let carol = await h.connect("carol")
        alice.board.receive(signalMessage(to: "bob", #"{"type":"call-invite","callId":"c1"}"#), from: alice.session)
        alice.board.receive(textMessage(to: "carol", "after the invite"), from: alice.session)
        try await waitUntil { backend.questions.count == 1 }
        #expect(backend.questions.first == InviteQuestion(caller: "alice", callee: "bob", callId: "c1", callType: .audio))
        // Nobody else waits, the callee included; the caller's message waits behind its invite.
        bob.board.receive(textMessage(to: "carol", "from bob"), from: bob.session)
        try await waitUntil { !carol.outlet.messages.isEmpty }
        #expect(carol.outlet.take().map(\.content) == ["from bob"])
        #expect(alice.outlet.messages.isEmpty && bob.outlet.messages.isEmpty)

        backend.answer(false)
        await h.settle()
        let failed = try notice(alice.outlet.take().first, to: "alice")
        #expect(failed["reason"] == "forbidden")
        #expect(failed["callId"] == "c1")
        #expect(carol.outlet.take().map(\.content) == ["after the invite"])
        #expect(bob.outlet.messages.isEmpty)
        #expect(h.callCount == 0)
        #expect(h.records.map(\.status) == [.failed])
        #expect(h.records.first?.endReason == "forbidden")
        #expect(h.ringTimers.isEmpty)
        // The store let the call go: bob takes another call.
        carol.board.receive(signalMessage(to: "bob", #"{"type":"call-invite","callId":"c2"}"#), from: carol.session)
        try await waitUntil { backend.questions.count == 2 }
        backend.answer(true)
        await h.settle()
        #expect(try body(#require(bob.outlet.take().first))["type"] == "call-invite")
        #expect(try notice(carol.outlet.take().first, to: "carol")["type"] == "call-ringing")
        #expect(h.callCount == 1)
        #expect(h.records.last?.status == .invite)
    }
}

/// A backend that answers when the test says so.
final class HeldPermission: InvitePermission {
    private let state = Mutex<(questions: [InviteQuestion], waiting: [@Sendable (Bool) -> Void])>(([], []))

    var questions: [InviteQuestion] { state.withLock { $0.questions } }

    func ask(_ question: InviteQuestion, then done: @escaping @Sendable (Bool) -> Void) {
        state.withLock {
            $0.questions.append(question)
            $0.waiting.append(done)
        }
    }

    /// Answers the oldest open question.
    func answer(_ allowed: Bool) {
        let done = state.withLock { $0.waiting.removeFirst() }
        done(allowed)
    }
}

/// Polls `condition` until it holds (10 s at most).
func waitUntil(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met in 10 s", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}
