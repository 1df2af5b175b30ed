import MetricsTestKit
import SwitchboardCore
import Testing

/// What the single-node engine counts while it works.
@Suite struct SwitchboardMetricsTests {
    let backend = TestMetrics()
    let h: Harness

    init() async throws {
        h = try await Harness(.singleNode, metrics: SignalingMetrics(factory: backend))
    }

    var relayed: [String: Int64] { backend.counts(MetricName.messagesRelayed, by: "route") }
    var signals: [String: Int64] { backend.counts(MetricName.signals, by: "type").filter { $0.value > 0 } }
    var calls: [String: Int64] { backend.counts(MetricName.calls, by: "status").filter { $0.value > 0 } }

    func errors(_ reason: String, notice: String = "error") throws -> Int64 {
        try backend.count(MetricName.errors, [("notice", notice), ("reason", reason)])
    }

    var totalErrors: Int64 { backend.counters(label: MetricName.errors).map(\.totalValue).reduce(0, +) }

    @Test func relayedPlainMessagesCountAsLocal() async throws {
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.send(textMessage(to: "bob", "hi"), from: alice)
        await h.send(textMessage(to: "alice", "hello"), from: bob)
        #expect(bob.outlet.messages.count == 1)
        #expect(relayed == ["local": 2, "remote": 0])
        #expect(totalErrors == 0)
    }

    @Test func aMessageForAnOfflineUserIsAnErrorNotARelay() async throws {
        let alice = await h.connect("alice")
        await h.send(textMessage(to: "carol", "hi"), from: alice)
        try expectError(alice.outlet.take(), to: "alice", reason: "offline")
        #expect(relayed == ["local": 0, "remote": 0])
        #expect(try errors("offline") == 1)
        #expect(totalErrors == 1)
    }

    @Test func aFullCallCountsSignalsOutcomesAndTimes() async throws {
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob)
        h.clock.advance(by: .milliseconds(4_200))
        await h.signal(#"{"type":"call-accept","callId":"c1"}"#, from: bob, to: "alice")
        await h.signal(#"{"type":"offer","callId":"c1","offer":{"type":"offer","sdp":"v=0"}}"#, from: alice, to: "bob")
        await h.signal(#"{"type":"answer","callId":"c1","answer":{"type":"answer","sdp":"v=0"}}"#, from: bob, to: "alice")
        for _ in 0..<3 {
            await h.signal(#"{"type":"ice-candidate","callId":"c1","candidate":{"candidate":"x"}}"#, from: alice, to: "bob")
        }
        h.clock.advance(by: .seconds(125))
        await h.signal(#"{"type":"call-hangup","callId":"c1"}"#, from: bob, to: "alice")

        #expect(
            signals == ["call-invite": 1, "call-accept": 1, "offer": 1, "answer": 1, "ice-candidate": 3, "call-hangup": 1]
        )
        // Every signal was relayed to the other party; the ringing notice is not a relay.
        #expect(relayed == ["local": 8, "remote": 0])
        #expect(calls == ["invite": 1, "accepted": 1, "hung_up": 1])
        #expect(try backend.seconds(MetricName.inviteToAccept) == [4.2])
        #expect(try backend.seconds(MetricName.callDuration) == [125])
        #expect(totalErrors == 0)
    }

    @Test func rejectedAndMissedCallsAreCountedByStatus() async throws {
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.ring(alice, bob, callId: "c1")
        await h.signal(#"{"type":"call-reject","callId":"c1"}"#, from: bob, to: "alice")
        await h.ring(alice, bob, callId: "c2")
        let timer = try #require(h.ringTimers.last)
        h.clock.advance(by: .seconds(60))
        #expect(timer.fire())
        await h.settle()

        #expect(calls == ["invite": 2, "rejected": 1, "missed": 1])
        #expect(try backend.seconds(MetricName.inviteToAccept).isEmpty)
        #expect(try backend.seconds(MetricName.callDuration).isEmpty)
        // The server's timeout hang-ups are notices, not relays, and not errors.
        #expect(relayed["local"] == 3)
        #expect(totalErrors == 0)
    }

    @Test func failedInvitesCountAsFailedCallsAndCallFailedErrors() async throws {
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        let carol = await h.connect("carol")
        await h.signal(#"{"type":"call-invite","callId":"c1"}"#, from: alice, to: "dave")  // offline
        await h.establish(bob, carol, callId: "c2")
        await h.signal(#"{"type":"call-invite","callId":"c3"}"#, from: alice, to: "bob")  // busy
        await h.signal(#"{"type":"call-invite","callId":"c4"}"#, from: alice, to: "alice")  // forbidden

        #expect(try errors("offline", notice: "call-failed") == 1)
        #expect(try errors("busy", notice: "call-failed") == 1)
        #expect(try errors("forbidden", notice: "call-failed") == 1)
        #expect(totalErrors == 3)
        #expect(calls == ["invite": 1, "accepted": 1, "failed": 2])  // a refused invite to oneself writes no record
        #expect(signals == ["call-invite": 4, "call-accept": 1])
    }

    @Test func errorNoticesCountByReason() async throws {
        let alice = await h.connect("alice")
        _ = await h.connect("bob")
        var group = textMessage(to: "bob", "hi")
        group.messageType = 2
        await h.send(group, from: alice)
        await h.send(textMessage(to: "bob", "hi", contentType: 9), from: alice)
        await h.signal("not json", from: alice, to: "bob")
        await h.signal(#"{"type":"call-transfer"}"#, from: alice, to: "bob")
        await h.signal(#"{"type":"offer","callId":"nope","offer":{"type":"offer","sdp":"v=0"}}"#, from: alice, to: "bob")

        #expect(try errors("unsupported") == 1)
        #expect(try errors("invalid-message") == 1)
        #expect(try errors("invalid-signal") == 1)
        #expect(try errors("unknown-signal") == 1)
        #expect(try errors("no-call") == 1)
        #expect(totalErrors == 5)
        // Only the offer parsed as a signal; nothing was relayed.
        #expect(signals == ["offer": 1])
        #expect(relayed["local"] == 0)
    }

    @Test func theRecordSinkStillReceivesEveryRecord() async throws {
        let alice = await h.connect("alice")
        let bob = await h.connect("bob")
        await h.establish(alice, bob)
        #expect(h.records.map(\.status) == [.invite, .accepted])
        #expect(calls == ["invite": 1, "accepted": 1])
    }
}
