import SwitchboardCore
import Testing

/// `call-connected` and the reasons of hangups and rejects (PROTOCOL.md §8), in every engine mode.
@Suite struct ConnectionStateTests {
    /// A harness in `mode` where alice's call to bob rings.
    func ringing(_ mode: EngineMode) async throws -> (Harness, Peer, Peer) {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob)
        return (h, alice, bob)
    }

    @Test(arguments: EngineMode.allCases)
    func callConnectedSetsTheRecordsConnectedTimeOnceWhoeverEndsTheCall(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.establish(alice, bob)
        h.clock.advance(by: .seconds(2))
        let connectedAt = h.clock.now
        await h.signal(#"{"type":"call-connected","callId":"c1"}"#, from: bob, to: "alice")
        h.clock.advance(by: .seconds(1))
        await h.signal(#"{"type":"call-connected"}"#, from: alice, to: "bob")
        // Not relayed, no answer; the repeat changes nothing.
        #expect(alice.outlet.take().isEmpty)
        #expect(bob.outlet.take().isEmpty)
        let snapshots = h.records.filter { $0.callId == "c1" }
        #expect(snapshots.map(\.status) == [.invite, .accepted, .accepted])
        #expect(snapshots.map(\.connectedTime) == [nil, nil, connectedAt])
        // Two nodes: bob's node saw the call connect, alice's ends it.
        h.clock.advance(by: .seconds(5))
        await h.signal(#"{"type":"call-hangup","reason":"network-lost"}"#, from: alice, to: "bob")
        let ended = try #require(h.records.last)
        #expect(ended.status == .hungUp)
        #expect(ended.connectedTime == connectedAt)
        #expect(ended.endReason == "network-lost")
        #expect(try body(#require(bob.outlet.take().first))["reason"] == "network-lost")
    }

    @Test(arguments: EngineMode.allCases)
    func callConnectedOutsideAnActiveCallIsNoCall(mode: EngineMode) async throws {
        let h = try await Harness(mode)
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.signal(#"{"type":"call-connected"}"#, from: alice, to: "bob")
        try expectError(alice.outlet.take(), to: "alice", reason: "no-call")
        await h.ring(alice, bob)
        await h.signal(#"{"type":"call-connected","callId":"c1"}"#, from: bob, to: "alice")
        try expectError(bob.outlet.take(), to: "bob", reason: "no-call")
        #expect(alice.outlet.take().isEmpty)
        #expect(h.records.allSatisfy { $0.connectedTime == nil })
    }

    @Test(arguments: EngineMode.allCases, ["call-hangup", "call-reject"])
    func aReasonDefaultsAndIsRelayedAndStored(mode: EngineMode, type: String) async throws {
        let (h, alice, bob) = try await ringing(mode)
        await h.signal(#"{"type":"\#(type)"}"#, from: bob, to: "alice")
        let expected = type == "call-hangup" ? "user-hangup" : "declined"
        #expect(try body(#require(alice.outlet.take().first))["reason"]?.stringValue == expected)
        #expect(h.records.last?.endReason == expected)
        #expect(h.callCount == 0)
    }

    @Test(arguments: EngineMode.allCases, ["call-hangup", "call-reject"])
    func anInvalidReasonHasNoEffect(mode: EngineMode, type: String) async throws {
        let (h, alice, bob) = try await ringing(mode)
        let before = h.records.count
        await h.signal(#"{"type":"\#(type)","reason":"Ice_Failed"}"#, from: bob, to: "alice")
        try expectError(bob.outlet.take(), to: "bob", reason: "invalid-signal")
        #expect(alice.outlet.take().isEmpty)
        #expect(h.records.count == before)
        #expect(h.callCount == 1)
        await h.signal(#"{"type":"call-accept"}"#, from: bob, to: "alice")
        #expect(try body(#require(alice.outlet.take().first))["type"] == "call-accept", "the call still rings")
    }
}
