import NIOCore
import RedisTestSupport
import RedisWire
import SwitchboardCore
import Testing

@testable import SwitchboardRedis

/// Two nodes' scripts on one real redis-server.
private struct Nodes {
    let client: RedisClient
    let keys: ClusterKeys
    let n1: ClusterScripts
    let n2: ClusterScripts
    let raw: RawKeys

    init(_ client: RedisClient, keys: ClusterKeys = ClusterKeys()) {
        self.client = client
        self.keys = keys
        n1 = ClusterScripts(redis: client, keys: keys, node: "n1")
        n2 = ClusterScripts(redis: client, keys: keys, node: "n2")
        raw = RawKeys(client, keys: keys)
    }

    /// Rings `callee` from `caller` (both registered first, on the given nodes) and checks it rang.
    @discardableResult
    func ring(
        _ id: String,
        _ caller: String,
        on callerNode: ClusterScripts,
        _ callee: String,
        on calleeNode: ClusterScripts,
        at now: Int64 = t0,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Call {
        _ = try await callerNode.register(caller, now: now).get()
        _ = try await calleeNode.register(callee, now: now).get()
        let call = Call(id: id, caller: caller, callee: callee, callType: .audio, createdAt: now)
        let reply = try await callerNode.invite(call, ringTTL: .seconds(70)).get()
        try #require(reply.outcome == "ok", "invite answered \(reply.outcome) \(reply.detail)", sourceLocation: sourceLocation)
        return call
    }

    /// Rings and accepts a call.
    @discardableResult
    func establish(
        _ id: String,
        _ caller: String,
        on callerNode: ClusterScripts,
        _ callee: String,
        on calleeNode: ClusterScripts,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Call {
        try await ring(id, caller, on: callerNode, callee, on: calleeNode, sourceLocation: sourceLocation)
        let reply = try await calleeNode.transition("accept", from: callee, to: caller, callId: id, now: t0 + 1_000).get()
        try #require(reply.outcome == "accepted", sourceLocation: sourceLocation)
        return try #require(reply.call, sourceLocation: sourceLocation)
    }

    /// Whether no key of call `id` (its hash, either party's `user-call`) is left.
    func callIsGone(_ id: String, _ caller: String, _ callee: String) async throws -> Bool {
        let left = [
            try await raw.exists(keys.call(id)), try await raw.exists(keys.userCall(caller)),
            try await raw.exists(keys.userCall(callee)),
        ]
        return left == [false, false, false]
    }
}

/// A realistic unix-ms time.
private let t0: Int64 = 1_700_000_000_000

// MARK: - Presence

@Suite("ClusterScripts presence against a real redis-server", .timeLimit(.minutes(1)))
struct ClusterPresenceScriptTests {
    @Test func registerWritesPresenceAndTheNodeSet() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let answer = try await nodes.n1.register("alice", now: t0).get()
            #expect(answer.previous == nil)
            #expect(answer.call == nil)
            // The literal names of PROTOCOL.md §6 and the README.
            #expect(try await client.execute("HGET", "webrtc:presence", "alice").string == "n1")
            #expect(try await client.execute("SISMEMBER", "webrtc:node:n1:users", "alice") == .integer(1))
            #expect(try await nodes.raw.users(of: "n1") == ["alice"])
            #expect(try await nodes.n1.lookup("alice").get() == "n1")
            #expect(try await nodes.n1.lookup("nobody").get() == nil)

            // Registering again on the same node names no previous node.
            #expect(try await nodes.n1.register("alice", now: t0 + 1).get().previous == nil)
            #expect(try await nodes.raw.presence("alice") == "n1")
        }
    }

    @Test func registeringOnAnotherNodeMovesTheUser() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.register("alice", now: t0).get()
            _ = try await nodes.n1.register("bob", now: t0).get()
            let answer = try await nodes.n2.register("alice", now: t0 + 1).get()
            #expect(answer.previous == "n1")
            #expect(answer.call == nil)
            #expect(try await nodes.raw.presence("alice") == "n2")
            #expect(try await nodes.raw.users(of: "n1") == ["bob"])
            #expect(try await nodes.raw.users(of: "n2") == ["alice"])
        }
    }

    @Test func registerAnswersTheCallTheUserIsIn() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)

            // Bob reconnects on n1 while the call rings.
            let ringing = try await nodes.n1.register("bob", now: t0 + 10).get()
            #expect(ringing.previous == "n2")
            #expect(ringing.call == Call(id: "c1", caller: "alice", callee: "bob", callType: .audio, createdAt: t0))

            _ = try await nodes.n1.transition("accept", from: "bob", to: "alice", callId: "c1", now: t0 + 20).get()
            let active = try await nodes.n2.register("alice", now: t0 + 30).get()
            #expect(active.previous == "n1")
            #expect(
                active.call
                    == Call(
                        id: "c1",
                        caller: "alice",
                        callee: "bob",
                        callType: .audio,
                        createdAt: t0,
                        state: .active,
                        startedAt: t0 + 20
                    )
            )
            // A user in no call gets none.
            #expect(try await nodes.n2.register("carol", now: t0).get().call == nil)
        }
    }

    @Test func unregisterRemovesOnlyThisNodesEntry() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.register("alice", now: t0).get()
            _ = try await nodes.n2.register("alice", now: t0 + 1).get()

            // n1's session closes after the user moved to n2: n2's entry stays.
            #expect(try await nodes.n1.unregister("alice", now: t0 + 2).get() == .integer(0))
            #expect(try await nodes.raw.presence("alice") == "n2")
            #expect(try await nodes.raw.users(of: "n2") == ["alice"])

            #expect(try await nodes.n2.unregister("alice", now: t0 + 3).get() == .integer(1))
            #expect(try await nodes.raw.presence("alice") == nil)
            #expect(try await nodes.raw.users(of: "n2").isEmpty)
        }
    }

    @Test func unregisterKeepsAUserInACallInTheNodesSet() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            _ = try await nodes.n1.register("carol", now: t0).get()

            #expect(try await nodes.n1.unregister("alice", now: t0 + 1).get() == .integer(1))
            #expect(try await nodes.n1.unregister("carol", now: t0 + 1).get() == .integer(1))
            #expect(try await nodes.raw.presence("alice") == nil)
            #expect(try await nodes.raw.presence("carol") == nil)
            // The reaper must still find alice should n1 die before her call ends.
            #expect(try await nodes.raw.users(of: "n1") == ["alice"])
        }
    }

    @Test func restoreDoesNotOverwriteANewerSessionElsewhere() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.register("alice", now: t0).get()
            _ = try await nodes.n2.register("alice", now: t0 + 1).get()

            #expect(try await nodes.n1.restore("alice", now: t0 + 2).get() == "n2")
            #expect(try await nodes.raw.presence("alice") == "n2")
            #expect(try await nodes.raw.users(of: "n1").isEmpty)
            #expect(try await nodes.raw.users(of: "n2") == ["alice"])

            // Redis lost the user (a restart): restore writes them back.
            #expect(try await nodes.n1.restore("bob", now: t0 + 3).get() == nil)
            #expect(try await nodes.raw.presence("bob") == "n1")
            #expect(try await nodes.raw.users(of: "n1") == ["bob"])
            // Still here: nothing to report.
            #expect(try await nodes.n1.restore("bob", now: t0 + 4).get() == nil)
            #expect(try await nodes.raw.presence("bob") == "n1")
        }
    }

    @Test func beatRecordsTheHeartbeat() async throws {
        try await withLiveRedis { _, client async throws in
            let nodes = Nodes(client)
            // The first beat finds the node missing (its users must register), the next ones do not.
            let first = try await nodes.n1.beat(now: t0, deadline: t0 - 3_000).get()
            #expect(first.wasMissing)
            #expect(first.orphans == [])
            #expect(try await client.execute("ZSCORE", "webrtc:nodes", "n1").integer == t0)
            let second = try await nodes.n1.beat(now: t0 + 1_000, deadline: t0 - 2_000).get()
            #expect(!second.wasMissing)
            #expect(second.orphans == [])
            #expect(try await nodes.raw.heartbeat("n1") == t0 + 1_000)

            // Reaped while it stalled (n2 saw it silent): its next beat finds it missing again.
            _ = try await nodes.n2.beat(now: t0 + 10_000, deadline: t0 + 7_000).get()
            #expect(try await nodes.raw.heartbeat("n1") == nil)
            #expect(try await nodes.n1.beat(now: t0 + 10_001, deadline: t0 + 7_001).get().wasMissing)
            // Redis lost everything (a restart): missing too.
            _ = try await client.execute("FLUSHALL")
            #expect(try await nodes.n1.beat(now: t0 + 11_000, deadline: t0 + 8_000).get().wasMissing)
        }
    }

    @Test func beatReapsASilentNode() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let n3 = ClusterScripts(redis: client, keys: nodes.keys, node: "n3")
            _ = try await nodes.n1.beat(now: t0, deadline: t0 - 3_000).get()
            // alice (n1) calls carol (n2); bob (n1) is in no call; dave was in a call on n1 and moved to n3.
            try await nodes.ring("c1", "alice", on: nodes.n1, "carol", on: nodes.n2)
            _ = try await nodes.n1.register("bob", now: t0).get()
            try await nodes.ring("c2", "dave", on: nodes.n1, "erin", on: n3)
            _ = try await nodes.n1.unregister("dave", now: t0 + 1).get()
            _ = try await n3.register("dave", now: t0 + 2).get()
            #expect(try await nodes.raw.users(of: "n1") == ["alice", "bob", "dave"])
            _ = try await n3.beat(now: t0 + 2_500, deadline: t0 - 500).get()

            // n2 beats at t0 + 4 s with a 3 s silence allowed: n1 (t0) is dead, n3 (t0 + 2.5 s) is not.
            let orphans = try await nodes.n2.beat(now: t0 + 4_000, deadline: t0 + 1_000).get().orphans
            #expect(orphans == ["alice"])
            #expect(try await nodes.raw.presence("alice") == nil)
            #expect(try await nodes.raw.presence("bob") == nil)
            #expect(try await nodes.raw.presence("dave") == "n3")
            #expect(try await nodes.raw.presence("carol") == "n2")
            #expect(try await nodes.raw.exists(nodes.keys.nodeUsers("n1")) == false)
            #expect(try await nodes.raw.heartbeat("n1") == nil)
            #expect(try await nodes.raw.heartbeat("n2") == t0 + 4_000)
            #expect(try await nodes.raw.heartbeat("n3") == t0 + 2_500)
            #expect(try await nodes.raw.users(of: "n3") == ["dave", "erin"])
            // Reaping ends no call: the orphan's call waits for the reconnect grace.
            #expect(try await nodes.raw.callOf("alice") == "c1")

            // Nothing left to reap.
            #expect(try await nodes.n2.beat(now: t0 + 5_000, deadline: t0 + 2_000).get().orphans == [])
            #expect(try await nodes.raw.heartbeat("n3") == t0 + 2_500)
        }
    }

    @Test func leaveHandsTheNodeToTheNextReaper() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.beat(now: t0, deadline: t0 - 3_000).get()
            try await nodes.ring("c1", "alice", on: nodes.n1, "carol", on: nodes.n2)
            _ = try await nodes.n1.register("bob", now: t0).get()
            _ = try await nodes.n1.register("dave", now: t0).get()
            _ = try await nodes.n2.register("dave", now: t0 + 1).get()  // dave moved to n2

            #expect(try await nodes.n1.leave(now: t0 + 100).get() == .integer(1))
            #expect(try await nodes.raw.presence("alice") == nil)
            #expect(try await nodes.raw.presence("bob") == nil)
            #expect(try await nodes.raw.presence("dave") == "n2")
            #expect(try await nodes.raw.heartbeat("n1") == 0)
            #expect(try await nodes.raw.users(of: "n1") == ["alice", "bob"])

            // The next beat of another node, well within any silence, reaps n1 and answers alice.
            let orphans = try await nodes.n2.beat(now: t0 + 200, deadline: t0 - 3_000).get().orphans
            #expect(orphans == ["alice"])
            #expect(try await nodes.raw.heartbeat("n1") == nil)
            #expect(try await nodes.raw.exists(nodes.keys.nodeUsers("n1")) == false)
            #expect(try await nodes.raw.presence("dave") == "n2")
        }
    }

    @Test func resetReapsTheNodesOwnLeftovers() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            try await nodes.ring("c1", "alice", on: nodes.n1, "carol", on: nodes.n2)
            _ = try await nodes.n1.register("bob", now: t0).get()
            _ = try await nodes.n2.register("carol", now: t0).get()

            // n1 restarts (same id): what the earlier run left is reaped, n2's entries are not.
            #expect(try await nodes.n1.reset(now: t0 + 10_000).get() == ["alice"])
            #expect(try await nodes.raw.presence("alice") == nil)
            #expect(try await nodes.raw.presence("bob") == nil)
            #expect(try await nodes.raw.presence("carol") == "n2")
            #expect(try await nodes.raw.exists(nodes.keys.nodeUsers("n1")) == false)
            #expect(try await nodes.raw.users(of: "n2") == ["carol"])
            #expect(try await nodes.n1.reset(now: t0 + 10_001).get() == [])
        }
    }

    @Test func concurrentRegistrationsLeaveOneConsistentOwner() async throws {
        try await withLiveRedis { server, client in
            let other = try RedisClient(url: server.url())
            let states = other.stateChanges()
            try await whileRunning(other) {
                try await awaitState(.connected, in: states)
                let keys = ClusterKeys()
                let n1 = ClusterScripts(redis: client, keys: keys, node: "n1")
                let n2 = ClusterScripts(redis: other, keys: keys, node: "n2")
                let raw = RawKeys(client)
                for round in 0..<20 {
                    let user = "user\(round)"
                    let first = n1.register(user, now: t0)
                    let second = n2.register(user, now: t0)
                    let previous = [try await first.get().previous, try await second.get().previous]
                    let owner = try #require(try await raw.presence(user))
                    // Whoever ran second saw the first as previous, and took the user from its set.
                    #expect(previous == (owner == "n1" ? ["n2", nil] : [nil, "n1"]), "round \(round)")
                    #expect(try await raw.users(of: owner).contains(user))
                    #expect(try await !raw.users(of: owner == "n1" ? "n2" : "n1").contains(user))
                }
            }
        }
    }

    @Test func scriptsUseTheConfiguredPrefix() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client, keys: ClusterKeys(prefix: "test:", signalsChannel: "test:signals"))
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            _ = try await nodes.n1.beat(now: t0, deadline: t0 - 3_000).get()
            #expect(try await client.execute("HGET", "test:presence", "alice").string == "n1")
            #expect(try await client.execute("SISMEMBER", "test:node:n2:users", "bob") == .integer(1))
            #expect(try await client.execute("ZSCORE", "test:nodes", "n1").integer == t0)
            #expect(try await client.execute("HGET", "test:call:c1", "caller").string == "alice")
            #expect(try await client.execute("GET", "test:user-call:bob").string == "c1")
            #expect(try await client.execute("KEYS", "webrtc:*") == .array([]))
            #expect(nodes.keys.inbox("n2") == "test:signals:n2")
        }
    }
}

// MARK: - Calls

@Suite("ClusterScripts calls against a real redis-server", .timeLimit(.minutes(1)))
struct ClusterCallScriptTests {
    @Test func inviteOfAnOfflineCalleeWritesNothing() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.register("alice", now: t0).get()
            let call = Call(id: "c1", caller: "alice", callee: "bob", callType: .audio, createdAt: t0)
            let reply = try await nodes.n1.invite(call, ringTTL: .seconds(70)).get()
            #expect(reply.outcome == "offline")
            #expect(reply.detail == "")
            #expect(reply.call == nil)
            #expect(try await nodes.callIsGone("c1", "alice", "bob"))
        }
    }

    @Test func inviteWritesARingingCallThatExpires() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.register("alice", now: t0).get()
            _ = try await nodes.n2.register("bob", now: t0).get()
            let call = Call(id: "c1", caller: "alice", callee: "bob", callType: .video, createdAt: t0)
            let reply = try await nodes.n1.invite(call, ringTTL: .milliseconds(70_500)).get()
            #expect(reply.outcome == "ok")
            #expect(reply.detail == "n2")
            #expect(reply.call == call)

            #expect(
                try await nodes.raw.call("c1")
                    == ["caller": "alice", "callee": "bob", "call_type": "2", "state": "ringing", "created_at": "\(t0)"]
            )
            #expect(try await client.execute("GET", "webrtc:user-call:alice").string == "c1")
            #expect(try await nodes.raw.callOf("bob") == "c1")
            for ttl in try await nodes.raw.ttls(callId: "c1", "alice", "bob") {
                #expect(ttl > 60_000 && ttl <= 70_500, "PTTL \(ttl)")
            }
        }
    }

    @Test func inviteIsBusyWhenEitherPartyIsInACall() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            _ = try await nodes.n1.register("carol", now: t0).get()

            let calleeBusy = try await nodes.n1.invite(
                Call(id: "c2", caller: "carol", callee: "bob", callType: .audio, createdAt: t0),
                ringTTL: .seconds(70)
            ).get()
            #expect(calleeBusy.outcome == "busy")
            #expect(calleeBusy.detail == "")
            let callerBusy = try await nodes.n2.invite(
                Call(id: "c3", caller: "bob", callee: "carol", callType: .audio, createdAt: t0),
                ringTTL: .seconds(70)
            ).get()
            #expect(callerBusy.outcome == "busy")
            #expect(callerBusy.detail == "")

            #expect(try await nodes.raw.exists(nodes.keys.call("c2")) == false)
            #expect(try await nodes.raw.exists(nodes.keys.call("c3")) == false)
            #expect(try await nodes.raw.callOf("carol") == nil)
            #expect(try await nodes.raw.callOf("bob") == "c1")

            // Busy also once the call is active.
            _ = try await nodes.n2.transition("accept", from: "bob", to: "alice", callId: "c1", now: t0 + 1).get()
            let stillBusy = try await nodes.n1.invite(
                Call(id: "c4", caller: "carol", callee: "alice", callType: .audio, createdAt: t0),
                ringTTL: .seconds(70)
            ).get()
            #expect(stillBusy.outcome == "busy")
        }
    }

    @Test func aCallIdInUseIsDuplicateOrBusyInTheDocumentedOrder() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let c1 = try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            _ = try await nodes.n1.register("carol", now: t0).get()
            _ = try await nodes.n1.register("dave", now: t0).get()
            func invite(_ caller: String, _ callee: String, id: String = "c1") async throws -> ScriptReply {
                try await nodes.n1.invite(
                    Call(id: id, caller: caller, callee: callee, callType: .video, createdAt: t0 + 5),
                    ringTTL: .seconds(70)
                ).get()
            }

            // The caller re-sends their invite; the callee "invites back" with the same id.
            #expect(try await invite("alice", "bob").outcome == "duplicate")
            #expect(try await invite("bob", "alice").outcome == "duplicate")
            // Others meeting the live id: offline first, then busy, then duplicate; detail "live".
            let offline = try await invite("carol", "nobody")
            #expect([offline.outcome, offline.detail] == ["offline", "live"])
            let busy = try await invite("carol", "bob")
            #expect([busy.outcome, busy.detail] == ["busy", "live"])
            let taken = try await invite("carol", "dave")
            #expect(taken.outcome == "duplicate")

            // The live call is untouched, and carol and dave are in no call.
            let reply = try await nodes.n1.transition("lookup", from: "alice", to: "bob", callId: "c1", now: t0 + 6).get()
            #expect(reply.call == c1)
            #expect(try await nodes.raw.callOf("carol") == nil)
            #expect(try await nodes.raw.callOf("dave") == nil)
        }
    }

    @Test func onlyTheCalleeAcceptsARingingCall() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let call = try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            _ = try await nodes.n1.register("carol", now: t0).get()

            let byCaller = try await nodes.n1.transition("accept", from: "alice", to: "bob", callId: "c1", now: t0 + 1).get()
            #expect(byCaller.outcome == "no-call")
            #expect(byCaller.call == nil)
            let wrongRecipient = try await nodes.n2.transition("accept", from: "bob", to: "carol", callId: "c1", now: t0 + 1)
                .get()
            #expect(wrongRecipient.outcome == "no-call")
            let stranger = try await nodes.n1.transition("accept", from: "carol", to: "alice", callId: "c1", now: t0 + 1).get()
            #expect(stranger.outcome == "no-call")
            #expect(try await nodes.raw.call("c1")["state"] == "ringing")

            let accepted = try await nodes.n2.transition("accept", from: "bob", to: "alice", callId: "c1", now: t0 + 2_000)
                .get()
            #expect(accepted.outcome == "accepted")
            #expect(accepted.detail == "n1")
            #expect(
                accepted.call
                    == Call(
                        id: "c1",
                        caller: "alice",
                        callee: "bob",
                        callType: call.callType,
                        createdAt: t0,
                        state: .active,
                        startedAt: t0 + 2_000
                    )
            )
            let stored = try await nodes.raw.call("c1")
            #expect(stored["state"] == "active")
            #expect(stored["started_at"] == "\(t0 + 2_000)")
            // An answered call no longer expires.
            #expect(try await nodes.raw.ttls(callId: "c1", "alice", "bob") == [-1, -1, -1])

            let again = try await nodes.n2.transition("accept", from: "bob", to: "alice", callId: "c1", now: t0 + 3_000).get()
            #expect(again.outcome == "no-call")
            #expect(try await nodes.raw.call("c1")["started_at"] == "\(t0 + 2_000)")
        }
    }

    @Test func aCallStartsNoEarlierThanItWasCreated() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            // The callee's node clock runs 500 ms behind the caller's.
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2, at: t0)
            let accepted = try await nodes.n2.transition("accept", from: "bob", to: "alice", callId: "c1", now: t0 - 500).get()
            #expect(accepted.outcome == "accepted")
            #expect(accepted.call?.startedAt == t0)
            #expect(try await nodes.raw.call("c1")["started_at"] == "\(t0)")
        }
    }

    @Test func rejectEndsARingingCall() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let byCaller = try await nodes.n1.transition("reject", from: "alice", to: "bob", callId: "c1", now: t0 + 1).get()
            #expect(byCaller.outcome == "no-call")
            #expect(try await nodes.raw.callOf("alice") == "c1")

            let rejected = try await nodes.n2.transition("reject", from: "bob", to: "alice", callId: "c1", now: t0 + 2).get()
            #expect(rejected.outcome == "rejected")
            #expect(rejected.detail == "n1")
            #expect(rejected.call?.id == "c1")
            #expect(try await nodes.callIsGone("c1", "alice", "bob"))

            // An active call cannot be rejected.
            try await nodes.establish("c2", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let late = try await nodes.n2.transition("reject", from: "bob", to: "alice", callId: "c2", now: t0 + 3).get()
            #expect(late.outcome == "no-call")
            #expect(try await nodes.raw.call("c2")["state"] == "active")
        }
    }

    @Test func hangupByEitherPartyEndsTheCallAndAnswersThePeersNode() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            // The caller hangs up a ringing call.
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let ringing = try await nodes.n1.transition("hangup", from: "alice", to: "bob", callId: "c1", now: t0 + 1).get()
            #expect([ringing.outcome, ringing.detail] == ["ended", "n2"])
            #expect(ringing.call?.state == .ringing)
            #expect(try await nodes.callIsGone("c1", "alice", "bob"))

            // The callee hangs up an active call.
            try await nodes.establish("c2", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let active = try await nodes.n2.transition("hangup", from: "bob", to: "alice", callId: "c2", now: t0 + 5_000).get()
            #expect([active.outcome, active.detail] == ["ended", "n1"])
            #expect(active.call?.state == .active)
            #expect(active.call?.startedAt == t0 + 1_000)
            #expect(try await nodes.callIsGone("c2", "alice", "bob"))

            // A peer with no session: "" for the node.
            try await nodes.establish("c3", "alice", on: nodes.n1, "bob", on: nodes.n2)
            _ = try await nodes.n2.unregister("bob", now: t0 + 6_000).get()
            let offline = try await nodes.n1.transition("hangup", from: "alice", to: "bob", callId: "c3", now: t0 + 7_000).get()
            #expect([offline.outcome, offline.detail] == ["ended", ""])

            // Nothing left to hang up.
            let none = try await nodes.n1.transition("hangup", from: "alice", to: "bob", callId: "c3", now: t0 + 8_000).get()
            #expect(none.outcome == "no-call")
        }
    }

    @Test func aTransitionWithoutCallIdFindsTheSendersCall() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            _ = try await nodes.n1.register("carol", now: t0).get()
            let none = try await nodes.n2.transition("accept", from: "bob", to: "alice", callId: nil, now: t0).get()
            #expect(none.outcome == "no-call")
            #expect(none.detail == "no call with alice")

            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let elsewhere = try await nodes.n2.transition("accept", from: "bob", to: "carol", callId: nil, now: t0).get()
            #expect(elsewhere.outcome == "no-call")
            let accepted = try await nodes.n2.transition("accept", from: "bob", to: "alice", callId: nil, now: t0 + 1).get()
            #expect(accepted.outcome == "accepted")
            #expect(accepted.call?.id == "c1")
            let ended = try await nodes.n1.transition("hangup", from: "alice", to: "bob", callId: nil, now: t0 + 2).get()
            #expect(ended.outcome == "ended")
            #expect(ended.call?.id == "c1")
            #expect(try await nodes.callIsGone("c1", "alice", "bob"))
        }
    }

    @Test func lookupAnswersTheCallWithoutChangingIt() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let call = try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let before = try await nodes.raw.call("c1")

            let found = try await nodes.n2.transition("lookup", from: "bob", to: "alice", callId: "c1", now: t0 + 1).get()
            #expect([found.outcome, found.detail] == ["found", "n1"])
            #expect(found.call == call)
            let byCaller = try await nodes.n1.transition("lookup", from: "alice", to: "bob", callId: nil, now: t0 + 1).get()
            #expect([byCaller.outcome, byCaller.detail] == ["found", "n2"])
            let stranger = try await nodes.n1.transition("lookup", from: "carol", to: "bob", callId: "c1", now: t0 + 1).get()
            #expect(stranger.outcome == "no-call")

            #expect(try await nodes.raw.call("c1") == before)
            #expect(try await nodes.raw.ttls(callId: "c1", "alice", "bob").allSatisfy { $0 > 0 })
        }
    }

    @Test func expireEndsOnlyARingingCall() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let ringing = try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let expired = try await nodes.n1.expire(callId: "c1", now: t0 + 60_000).get()
            #expect([expired.outcome, expired.detail] == ["ended", ""])
            #expect(expired.call == ringing)
            #expect(try await nodes.callIsGone("c1", "alice", "bob"))
            #expect(try await nodes.n1.expire(callId: "c1", now: t0 + 60_001).get().outcome == "none")

            try await nodes.establish("c2", "alice", on: nodes.n1, "bob", on: nodes.n2)
            let active = try await nodes.n1.expire(callId: "c2", now: t0 + 60_000).get()
            #expect(active.outcome == "none")
            #expect(active.call == nil)
            #expect(try await nodes.raw.call("c2")["state"] == "active")
            #expect(try await nodes.raw.callOf("alice") == "c2")
        }
    }

    @Test func abandonEndsTheCallOnlyOfAUserWithNoSession() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            try await nodes.establish("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)

            // Still connected (here or anywhere): nothing happens.
            #expect(try await nodes.n1.abandon("alice", now: t0 + 1).get().outcome == "none")
            _ = try await nodes.n1.unregister("alice", now: t0 + 2).get()
            _ = try await nodes.n2.register("alice", now: t0 + 3).get()  // came back on n2
            #expect(try await nodes.n1.abandon("alice", now: t0 + 4).get().outcome == "none")
            #expect(try await nodes.raw.callOf("alice") == "c1")

            _ = try await nodes.n2.unregister("alice", now: t0 + 5).get()
            let abandoned = try await nodes.n1.abandon("alice", now: t0 + 6).get()
            #expect([abandoned.outcome, abandoned.detail] == ["ended", "n2"])
            #expect(abandoned.call?.id == "c1")
            #expect(try await nodes.callIsGone("c1", "alice", "bob"))

            // A user in no call.
            #expect(try await nodes.n1.abandon("alice", now: t0 + 7).get().outcome == "none")
        }
    }

    @Test func restoreWritesBackALostCallUnlessAPartyMovedOn() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            let lost = Call(
                id: "c1",
                caller: "alice",
                callee: "bob",
                callType: .video,
                createdAt: t0,
                state: .active,
                startedAt: t0 + 500
            )
            let restored = try await nodes.n1.restore(lost, ringTTL: .seconds(70), now: t0 + 1_000).get()
            #expect(restored.outcome == "restored")
            #expect(
                try await nodes.raw.call("c1")
                    == [
                        "caller": "alice", "callee": "bob", "call_type": "2", "state": "active", "created_at": "\(t0)",
                        "started_at": "\(t0 + 500)",
                    ]
            )
            #expect(try await nodes.raw.callOf("alice") == "c1")
            #expect(try await nodes.raw.callOf("bob") == "c1")
            // Once written, the other node's copy does not overwrite it.
            #expect(try await nodes.n2.restore(lost, ringTTL: .seconds(70), now: t0 + 1_001).get().outcome == "none")
            // The restored call works like any other.
            _ = try await nodes.n2.register("bob", now: t0).get()
            let found = try await nodes.n1.transition("lookup", from: "alice", to: "bob", callId: "c1", now: t0 + 2_000).get()
            #expect(found.call == lost)

            // A ringing call restores with no started_at.
            let ringing = Call(id: "c5", caller: "erin", callee: "frank", callType: .audio, createdAt: t0)
            #expect(try await nodes.n1.restore(ringing, ringTTL: .seconds(70), now: t0).get().outcome == "restored")
            #expect(try await nodes.raw.call("c5")["state"] == "ringing")
            #expect(try await nodes.raw.call("c5")["started_at"] == nil)
            // ... and expires as an invite does; an active one does not.
            let ringingTTL = try await nodes.raw.pttl(nodes.keys.call("c5"))
            #expect(ringingTTL > 60_000 && ringingTTL <= 70_000, "PTTL \(ringingTTL)")
            #expect(try await nodes.raw.pttl(nodes.keys.call("c1")) == -1)

            // carol is in another call meanwhile: the stale one is not written.
            try await nodes.ring("c2", "carol", on: nodes.n1, "dave", on: nodes.n2)
            let stale = Call(id: "c3", caller: "carol", callee: "zoe", callType: .audio, createdAt: t0)
            #expect(try await nodes.n1.restore(stale, ringTTL: .seconds(70), now: t0 + 3_000).get().outcome == "none")
            #expect(try await nodes.raw.exists(nodes.keys.call("c3")) == false)
            #expect(try await nodes.raw.callOf("zoe") == nil)
            #expect(try await nodes.raw.callOf("carol") == "c2")
            let staleCallee = Call(id: "c4", caller: "yann", callee: "dave", callType: .audio, createdAt: t0)
            #expect(try await nodes.n1.restore(staleCallee, ringTTL: .seconds(70), now: t0 + 3_000).get().outcome == "none")
            #expect(try await nodes.raw.callOf("yann") == nil)
        }
    }

    @Test func scriptsRunAfterTheServerForgotThem() async throws {
        try await withLiveRedis { _, client in
            let nodes = Nodes(client)
            // The SHA the node computes is the one the server computes.
            let loaded = await client.execute(batch: ClusterScripts.loadCommands).map { try? $0.get().string }
            #expect(loaded == [ClusterScripts.presenceScript.sha, ClusterScripts.callScript.sha, RedisKeptSignals.script.sha])

            #expect(try await client.execute("SCRIPT", "FLUSH") == .simpleString("OK"))
            let shas: [RESPArgument] = [
                RESPArgument(ClusterScripts.presenceScript.sha), RESPArgument(ClusterScripts.callScript.sha),
            ]
            #expect(try await client.execute(["SCRIPT", "EXISTS"] + shas) == .array([.integer(0), .integer(0)]))

            // NOSCRIPT → EVAL: the operations still work, and EVAL cached the same scripts again.
            try await nodes.ring("c1", "alice", on: nodes.n1, "bob", on: nodes.n2)
            #expect(try await nodes.raw.presence("alice") == "n1")
            #expect(try await nodes.raw.callOf("bob") == "c1")
            #expect(try await client.execute(["SCRIPT", "EXISTS"] + shas) == .array([.integer(1), .integer(1)]))

            // Server errors other than NOSCRIPT are not retried as EVAL: they fail the operation.
            _ = try await client.execute("SET", "webrtc:presence", "not a hash")
            await #expect(throws: RedisError.self) { try await nodes.n1.register("carol", now: t0).get() }
        }
    }
}

// MARK: - Races

@Suite("ClusterScripts races on a real redis-server", .timeLimit(.minutes(1)))
struct ClusterScriptRaceTests {
    /// Two nodes, each on a connection of its own, so that their commands really race.
    private func withTwoConnections(
        _ body: (_ n1: ClusterScripts, _ n2: ClusterScripts, _ raw: RawKeys) async throws -> Void
    ) async throws {
        try await withLiveRedis { server, client in
            let other = try RedisClient(url: server.url())
            let states = other.stateChanges()
            try await whileRunning(other) {
                try await awaitState(.connected, in: states)
                let keys = ClusterKeys()
                _ = await client.execute(batch: ClusterScripts.loadCommands)
                try await body(
                    ClusterScripts(redis: client, keys: keys, node: "n1"),
                    ClusterScripts(redis: other, keys: keys, node: "n2"),
                    RawKeys(client)
                )
            }
        }
    }

    @Test func acceptAgainstHangupHasOneWinner() async throws {
        try await withTwoConnections { n1, n2, raw in
            _ = try await n1.register("alice", now: t0).get()
            _ = try await n2.register("bob", now: t0).get()
            var outcomes: Set<[String]> = []
            for round in 0..<20 {
                let id = "race-\(round)"
                let call = Call(id: id, caller: "alice", callee: "bob", callType: .audio, createdAt: t0)
                try #require(try await n1.invite(call, ringTTL: .seconds(70)).get().outcome == "ok")

                // Alternate who sends first; both are in flight before either is awaited.
                let (accept, hangup): (EventLoopFuture<ScriptReply>, EventLoopFuture<ScriptReply>)
                if round % 2 == 0 {
                    accept = n2.transition("accept", from: "bob", to: "alice", callId: id, now: t0 + 1)
                    hangup = n1.transition("hangup", from: "alice", to: "bob", callId: id, now: t0 + 1)
                } else {
                    hangup = n1.transition("hangup", from: "alice", to: "bob", callId: id, now: t0 + 1)
                    accept = n2.transition("accept", from: "bob", to: "alice", callId: id, now: t0 + 1)
                }
                let accepted = try await accept.get()
                let ended = try await hangup.get()
                outcomes.insert([accepted.outcome, ended.outcome])

                // The hangup always ends the call; it saw the accept exactly when the accept won.
                #expect(ended.outcome == "ended", "round \(round)")
                switch accepted.outcome {
                case "accepted":
                    #expect(ended.call?.state == .active, "round \(round)")
                case "no-call":
                    #expect(ended.call?.state == .ringing, "round \(round)")
                default:
                    Issue.record("round \(round): accept answered \(accepted.outcome)")
                }
                #expect(try await raw.callOf("alice") == nil)
                #expect(try await raw.callOf("bob") == nil)
                #expect(try await raw.exists(raw.keys.call(id)) == false)
            }
            #expect(outcomes.isSubset(of: [["accepted", "ended"], ["no-call", "ended"]]))
        }
    }

    @Test func twoAcceptsHaveOneWinner() async throws {
        try await withTwoConnections { n1, n2, raw in
            _ = try await n1.register("alice", now: t0).get()
            _ = try await n2.register("bob", now: t0).get()
            for round in 0..<20 {
                let id = "race-\(round)"
                let call = Call(id: id, caller: "alice", callee: "bob", callType: .audio, createdAt: t0)
                try #require(try await n1.invite(call, ringTTL: .seconds(70)).get().outcome == "ok")
                // Bob's two sessions (one replacing the other) accept at once.
                let first = n1.transition("accept", from: "bob", to: "alice", callId: id, now: t0 + 1)
                let second = n2.transition("accept", from: "bob", to: "alice", callId: id, now: t0 + 2)
                let outcomes = [try await first.get().outcome, try await second.get().outcome]
                #expect(outcomes.sorted() == ["accepted", "no-call"], "round \(round): \(outcomes)")
                #expect(try await raw.call(id)["state"] == "active")
                _ = try await n1.transition("hangup", from: "alice", to: "bob", callId: id, now: t0 + 3).get()
            }
        }
    }

    @Test func twoInvitesOfOneCalleeHaveOneWinner() async throws {
        try await withTwoConnections { n1, n2, raw in
            for round in 0..<20 {
                let callee = "callee\(round)"
                _ = try await n1.register("alice", now: t0).get()
                _ = try await n2.register("carol", now: t0).get()
                _ = try await n2.register(callee, now: t0).get()
                let first = n1.invite(
                    Call(id: "a-\(round)", caller: "alice", callee: callee, callType: .audio, createdAt: t0),
                    ringTTL: .seconds(70)
                )
                let second = n2.invite(
                    Call(id: "c-\(round)", caller: "carol", callee: callee, callType: .audio, createdAt: t0),
                    ringTTL: .seconds(70)
                )
                let replies = [try await first.get(), try await second.get()]
                #expect(replies.map(\.outcome).sorted() == ["busy", "ok"], "round \(round)")
                let winner = try #require(replies.first { $0.outcome == "ok" }?.call)
                let loser = winner.caller == "alice" ? "carol" : "alice"
                #expect(try await raw.callOf(callee) == winner.id)
                #expect(try await raw.callOf(winner.caller) == winner.id)
                #expect(try await raw.callOf(loser) == nil)
                _ = try await n1.transition("hangup", from: winner.caller, to: callee, callId: winner.id, now: t0 + 1).get()
            }
        }
    }
}
