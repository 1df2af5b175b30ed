import MetricsTestKit
import Testing

import SwitchboardCore

/// What the single-node engine counts while it works.
@Suite struct SwitchboardMetricsTests {
    let backend = TestMetrics()
    let h: Harness

    init() {
        h = Harness(metrics: SignalingMetrics(factory: backend))
    }

    var relayed: [String: Int64] { backend.counts(MetricName.messagesRelayed, by: "route") }
    var signals: [String: Int64] { backend.counts(MetricName.signals, by: "type").filter { $0.value > 0 } }
    var calls: [String: Int64] { backend.counts(MetricName.calls, by: "status").filter { $0.value > 0 } }

    func errors(_ reason: String, notice: String = "error") throws -> Int64 {
        try backend.count(MetricName.errors, [("notice", notice), ("reason", reason)])
    }

    var totalErrors: Int64 { backend.counters(label: MetricName.errors).map(\.totalValue).reduce(0, +) }

    @Test func relayedPlainMessagesCountAsLocal() throws {
        let alice = h.connect("alice")
        let bob = h.connect("bob")
        h.send(textMessage(to: "bob", "hi"), from: alice)
        h.send(textMessage(to: "alice", "hello"), from: bob)
        #expect(bob.outlet.messages.count == 1)
        #expect(relayed == ["local": 2, "remote": 0])
        #expect(totalErrors == 0)
    }

    @Test func aMessageForAnOfflineUserIsAnErrorNotARelay() throws {
        let alice = h.connect("alice")
        h.send(textMessage(to: "carol", "hi"), from: alice)
        try expectError(alice.outlet.take(), to: "alice", reason: "offline")
        #expect(relayed == ["local": 0, "remote": 0])
        #expect(try errors("offline") == 1)
        #expect(totalErrors == 1)
    }

    @Test func aFullCallCountsSignalsOutcomesAndTimes() throws {
        let alice = h.connect("alice")
        let bob = h.connect("bob")
        h.ring(alice, bob)
        h.clock.advance(by: .milliseconds(4_200))
        h.signal(#"{"type":"call-accept","callId":"c1"}"#, from: bob, to: "alice")
        h.signal(#"{"type":"offer","callId":"c1","offer":{"type":"offer","sdp":"v=0"}}"#, from: alice, to: "bob")
        h.signal(#"{"type":"answer","callId":"c1","answer":{"type":"answer","sdp":"v=0"}}"#, from: bob, to: "alice")
        for _ in 0..<3 {
            h.signal(#"{"type":"ice-candidate","callId":"c1","candidate":{"candidate":"x"}}"#, from: alice, to: "bob")
        }
        h.clock.advance(by: .seconds(125))
        h.signal(#"{"type":"call-hangup","callId":"c1"}"#, from: bob, to: "alice")

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

    @Test func rejectedAndMissedCallsAreCountedByStatus() throws {
        let alice = h.connect("alice")
        let bob = h.connect("bob")
        h.ring(alice, bob, callId: "c1")
        h.signal(#"{"type":"call-reject","callId":"c1"}"#, from: bob, to: "alice")
        h.ring(alice, bob, callId: "c2")
        let timer = try #require(h.ringTimers.last)
        h.clock.advance(by: .seconds(60))
        #expect(timer.fire())

        #expect(calls == ["invite": 2, "rejected": 1, "missed": 1])
        #expect(try backend.seconds(MetricName.inviteToAccept).isEmpty)
        #expect(try backend.seconds(MetricName.callDuration).isEmpty)
        // The server's timeout hang-ups are notices, not relays, and not errors.
        #expect(relayed["local"] == 3)
        #expect(totalErrors == 0)
    }

    @Test func failedInvitesCountAsFailedCallsAndCallFailedErrors() throws {
        let alice = h.connect("alice")
        let bob = h.connect("bob")
        let carol = h.connect("carol")
        h.signal(#"{"type":"call-invite","callId":"c1"}"#, from: alice, to: "dave")  // offline
        h.establish(bob, carol, callId: "c2")
        h.signal(#"{"type":"call-invite","callId":"c3"}"#, from: alice, to: "bob")  // busy
        h.signal(#"{"type":"call-invite","callId":"c4"}"#, from: alice, to: "alice")  // forbidden

        #expect(try errors("offline", notice: "call-failed") == 1)
        #expect(try errors("busy", notice: "call-failed") == 1)
        #expect(try errors("forbidden", notice: "call-failed") == 1)
        #expect(totalErrors == 3)
        #expect(calls == ["invite": 1, "accepted": 1, "failed": 2])  // a refused invite to oneself writes no record
        #expect(signals == ["call-invite": 4, "call-accept": 1])
    }

    @Test func errorNoticesCountByReason() throws {
        let alice = h.connect("alice")
        _ = h.connect("bob")
        var group = textMessage(to: "bob", "hi")
        group.messageType = 2
        h.send(group, from: alice)
        h.send(textMessage(to: "bob", "hi", contentType: 9), from: alice)
        h.signal("not json", from: alice, to: "bob")
        h.signal(#"{"type":"call-transfer"}"#, from: alice, to: "bob")
        h.signal(#"{"type":"offer","callId":"nope","offer":{"type":"offer","sdp":"v=0"}}"#, from: alice, to: "bob")

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

    @Test func theRecordSinkStillReceivesEveryRecord() throws {
        let alice = h.connect("alice")
        let bob = h.connect("bob")
        h.establish(alice, bob)
        #expect(h.records.map(\.status) == [.invite, .accepted])
        #expect(calls == ["invite": 1, "accepted": 1])
    }
}
