import SwitchboardCore
import Testing

/// Glare (PROTOCOL.md §8): both users call each other at once; exactly one call exists.
@Suite struct GlareTests {
    @Test func theCallBookAnswersTheStandingCall() throws {
        var book = CallBook()
        let standing = try book.invite(callId: "c1", caller: "alice", callee: "bob", callType: .audio, now: 1).get()
        #expect(book.invite(callId: "c2", caller: "bob", callee: "alice", callType: .video, now: 2) == .failure(.glare(standing)))
        #expect(book.count == 1)
        // Only while it rings: once accepted, calling back is busy.
        _ = try book.apply(.callAccept, from: "bob", to: "alice", callId: "c1", now: 3).get()
        #expect(book.invite(callId: "c3", caller: "bob", callee: "alice", callType: .audio, now: 4) == .failure(.busy))
    }

    @Test(arguments: EngineMode.allCases) func callingBackARingingCallerIsGlareAndTheirCallStands(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob)
        await h.signal(#"{"type":"call-invite","callId":"c2","callType":"audio"}"#, from: bob, to: "alice")

        let replies = bob.outlet.take()
        #expect(replies.count == 1)
        let failed = try notice(replies.first, to: "bob")
        #expect(failed["type"] == "call-failed")
        #expect(failed["reason"] == "glare")
        #expect(failed["callId"] == "c1")
        #expect(failed["to"] == "alice")
        #expect(alice.outlet.messages.isEmpty)
        #expect(h.callCount == 1)
        #expect(h.records.map(\.callId) == ["c1"])
        #expect(h.events.last?.name == .failed)
        #expect(h.events.last?.reason == "glare")

        // Alice's call rings on, and bob accepts it.
        await h.signal(#"{"type":"call-accept"}"#, from: bob, to: "alice")
        let accepted = try #require(alice.outlet.take().first)
        #expect(try body(accepted)["type"] == "call-accept")
        #expect(try body(accepted)["callId"] == "c1")
        #expect(h.records.last?.status == .accepted)
        #expect(h.callCount == 1)
    }

    @Test(arguments: EngineMode.allCases) func anInviteRefusedForGlareCountsAgainstTheLimit(mode: EngineMode) async throws {
        let h = try await Harness(mode, invitesPerMinute: 1)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob)
        await h.signal(#"{"type":"call-invite","callId":"c2"}"#, from: bob, to: "alice")
        #expect(try notice(bob.outlet.take().first, to: "bob")["reason"] == "glare")
        await h.signal(#"{"type":"call-hangup","callId":"c1"}"#, from: alice, to: "bob")
        _ = bob.outlet.take()

        h.clock.advance(by: .seconds(1))
        await h.signal(#"{"type":"call-invite","callId":"c3"}"#, from: bob, to: "alice")
        #expect(try notice(bob.outlet.take().first, to: "bob")["reason"] == "rate-limited")
        #expect(alice.outlet.messages.isEmpty)
    }
}
