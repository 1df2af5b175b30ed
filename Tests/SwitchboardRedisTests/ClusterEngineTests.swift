import Logging
import NIOCore
import NIOPosix
import RedisTestSupport
import RedisWire
import SwitchboardCore
import SwitchboardProto
import Synchronization
import Testing

@testable import SwitchboardRedis

// MARK: - Fakes

/// The write side of a socket: what it was given, awaitable.
private final class RecordingOutlet: SessionOutlet {
    let messages = Collected<ChatMessage>()
    let closes = Collected<UInt16>()

    func deliver(_ message: ChatMessage) { messages.append(message) }
    func close(code: UInt16, reason: String) { closes.append(code) }
}

/// Timers that fire only when the test says so.
private final class ManualTimers: TimerScheduler {
    final class Timer: ScheduledTimer {
        let delay: Duration
        private let action: @Sendable () -> Void
        private let cancelled = Atomic<Bool>(false)

        init(delay: Duration, action: @escaping @Sendable () -> Void) {
            self.delay = delay
            self.action = action
        }

        var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }
        func cancel() { cancelled.store(true, ordering: .sequentiallyConsistent) }
        func fire() { if !isCancelled { action() } }
    }

    private let timers = Mutex<[Timer]>([])

    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> any ScheduledTimer {
        let timer = Timer(delay: delay, action: action)
        timers.withLock { $0.append(timer) }
        return timer
    }

    /// Pending timers of `delay`.
    func pending(_ delay: Duration) -> [Timer] {
        timers.withLock { $0.filter { $0.delay == delay && !$0.isCancelled } }
    }
}

private final class Records: CallRecordSink {
    let all = Collected<CallRecord>()
    func enqueue(_ record: CallRecord) { all.append(record) }
}

private final class Events: CallEventSink {
    func emit(_ event: CallEvent) {}
}

// MARK: - Harness

/// One user's connection to one node.
private struct Peer {
    let session: Session
    let outlet: RecordingOutlet
    let engine: Switchboard
    var user: String { session.user }

    func send(_ message: ChatMessage) { engine.receive(message, from: session) }

    /// Sends a signal whose `content` is `json`.
    func signal(to recipient: String, _ json: String) {
        var message = ChatMessage()
        message.to = recipient
        message.content = json
        message.contentType = ContentType.signal
        message.messageType = MessageType.direct
        send(message)
    }

    /// Waits for the `count`th message this peer receives (1-based) and answers it.
    func received(_ count: Int) async throws -> ChatMessage {
        let messages = try await outlet.messages.wait(for: count, timeout: .seconds(5), "messages for \(user)")
        return messages[count - 1]
    }
}

/// The JSON content of a message.
private func content(_ message: ChatMessage) throws -> JSONValue {
    try JSONValue(parsing: message.content)
}

/// Two engines (n1, n2), each with its own command connection and inbox subscriber, on one redis-server.
private struct TwoNodes {
    let n1: Switchboard
    let n2: Switchboard
    let records1: Records
    let records2: Records
    let timers1: ManualTimers
    let timers2: ManualTimers
    let raw: RawKeys

    /// Connects `user` to `engine` and waits (bounded) until the cluster knows where they are.
    func connect(_ user: String, to engine: Switchboard) async throws -> Peer {
        let outlet = RecordingOutlet()
        let identity = try #require(UserIdentity(id: user, name: user.capitalized))
        let session = engine.connect(
            identity,
            connection: ConnectionInfo(userAgent: "test", ip: "127.0.0.1"),
            outlet: outlet
        )
        let deadline = ContinuousClock.now + .seconds(5)
        while try await raw.presence(user) != engine.nodeId {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: "\(user)'s presence on \(engine.nodeId)") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return Peer(session: session, outlet: outlet, engine: engine)
    }
}

extension TwoNodes {
    /// alice (n1) calls bob (n2) and bob accepts; both outlets have seen the messages of it.
    func establish(callId: String = "c1") async throws -> (alice: Peer, bob: Peer) {
        let alice = try await connect("alice", to: n1)
        let bob = try await connect("bob", to: n2)
        alice.signal(to: "bob", #"{"type":"call-invite","callId":"\#(callId)"}"#)
        _ = try await bob.received(1)
        bob.signal(to: "alice", #"{"type":"call-accept","callId":"\#(callId)"}"#)
        _ = try await alice.received(2)
        try #require(try await raw.call(callId)["state"] == "active")
        return (alice, bob)
    }

    /// Waits (bounded) until `condition` holds: for state written by callbacks no test can await.
    func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

private func withTwoNodes(_ body: (TwoNodes) async throws -> Void) async throws {
    try await withLiveRedis { server, client1 in
        let configuration = try RedisConnectionConfiguration(url: server.url())
        let client2 = RedisClient(configuration: configuration)
        let keys = ClusterKeys()
        let group = MultiThreadedEventLoopGroup.singleton
        let settings = { (node: String) in
            SwitchboardSettings(nodeId: node, ringTimeout: .seconds(60), reconnectGrace: .seconds(10), invitesPerMinute: 1000)
        }
        let records1 = Records()
        let records2 = Records()
        let timers1 = ManualTimers()
        let timers2 = ManualTimers()
        let engine = {
            (node: String, client: RedisClient, timers: ManualTimers, records: Records) -> (Switchboard, ClusterDelivery) in
            let delivery = ClusterDelivery(
                nodeId: node,
                redis: client,
                keys: keys,
                eventLoop: group.next(),
                limits: .standard,
                logger: Logger(label: node)
            )
            let ports = ClusterPorts.redis(
                ClusterScripts(redis: client, keys: keys, node: node),
                delivery: delivery,
                ringTimeout: .seconds(60),
                isReady: { true }
            )
            let engine = Switchboard(
                settings: settings(node),
                cluster: ports,
                scheduler: timers,
                records: records,
                events: Events(),
                logger: Logger(label: node)
            )
            delivery.deliver(to: engine)
            return (engine, delivery)
        }
        let (n1, delivery1) = engine("n1", client1, timers1, records1)
        let (n2, delivery2) = engine("n2", client2, timers2, records2)
        let inbox1 = RedisSubscriber(configuration: configuration, channels: [keys.inbox("n1")]) {
            delivery1.receive($0.payload, isBroadcast: false)
        }
        let inbox2 = RedisSubscriber(configuration: configuration, channels: [keys.inbox("n2")]) {
            delivery2.receive($0.payload, isBroadcast: false)
        }
        let states = [client2.stateChanges(), inbox1.stateChanges(), inbox2.stateChanges()]
        try await whileRunning(client2) {
            try await whileRunning(inbox1) {
                try await whileRunning(inbox2) {
                    for stream in states { try await awaitState(.connected, in: stream) }
                    // Both nodes are alive for each other's outboxes.
                    _ = try await ClusterScripts(redis: client1, keys: keys, node: "n1").beat(now: 1, deadline: 0).get()
                    _ = try await ClusterScripts(redis: client1, keys: keys, node: "n2").beat(now: 1, deadline: 0).get()
                    try await body(
                        TwoNodes(
                            n1: n1,
                            n2: n2,
                            records1: records1,
                            records2: records2,
                            timers1: timers1,
                            timers2: timers2,
                            raw: RawKeys(client1, keys: keys)
                        )
                    )
                }
            }
        }
    }
}

// MARK: - Tests

@Suite("Switchboard: two nodes on a real redis-server", .timeLimit(.minutes(1)))
struct SwitchboardTests {
    @Test func aCallAcrossNodesFromInviteToHangup() async throws {
        try await withTwoNodes { nodes in
            let alice = try await nodes.connect("alice", to: nodes.n1)
            let bob = try await nodes.connect("bob", to: nodes.n2)

            alice.signal(to: "bob", #"{"type":"call-invite","callId":"c1","callType":"video","x-extra":7}"#)
            let ringing = try content(try await alice.received(1))
            #expect(ringing["type"] == "call-ringing")
            #expect(ringing["callId"] == "c1")
            #expect(ringing["to"] == "bob")
            let invite = try await bob.received(1)
            #expect(invite.from == "alice")
            #expect(invite.fromUsername == "Alice")
            #expect(try content(invite)["type"] == "call-invite")
            #expect(try content(invite)["callId"] == "c1")
            #expect(try content(invite)["x-extra"]?.intValue == 7, "unknown fields are preserved")
            #expect(try await nodes.raw.call("c1")["state"] == "ringing")
            #expect(nodes.n2.callCount == 1, "bob's node mirrors the call it was told of")

            bob.signal(to: "alice", #"{"type":"call-accept","callId":"c1"}"#)
            let accept = try await alice.received(2)
            #expect(accept.from == "bob")
            #expect(try content(accept)["type"] == "call-accept")
            #expect(try await nodes.raw.call("c1")["state"] == "active")

            // Negotiation crosses the cluster in the order sent, both ways.
            alice.signal(to: "bob", #"{"type":"offer","callId":"c1","offer":{"type":"offer","sdp":"v=0 alice"}}"#)
            for index in 0..<30 {
                alice.signal(
                    to: "bob",
                    #"{"type":"ice-candidate","candidate":{"candidate":"candidate:\#(index)","sdpMid":"0"}}"#
                )
            }
            bob.signal(to: "alice", #"{"type":"answer","callId":"c1","answer":{"type":"answer","sdp":"v=0 bob"}}"#)
            let negotiation = try await bob.outlet.messages.wait(for: 32, timeout: .seconds(5), "negotiation")
            #expect(try content(negotiation[1])["type"] == "offer")
            let candidates = try negotiation[2...].map { try content($0)["candidate"]?["candidate"]?.stringValue }
            #expect(candidates == (0..<30).map { "candidate:\($0)" })
            #expect(try negotiation[2...].allSatisfy { try content($0)["callId"] == "c1" }, "stamped with the call")
            let answer = try await alice.received(3)
            #expect(try content(answer)["type"] == "answer")

            bob.signal(to: "alice", #"{"type":"call-hangup","callId":"c1"}"#)
            let hangup = try await alice.received(4)
            #expect(hangup.from == "bob")
            #expect(try content(hangup)["type"] == "call-hangup")
            #expect(try await nodes.raw.call("c1").isEmpty)
            #expect(try await nodes.raw.callOf("alice") == nil)
            #expect(nodes.n1.callCount == 0)
            #expect(nodes.n2.callCount == 0)

            // Each transition is recorded once, by the node that carried it out.
            let n1Records = try await nodes.records1.all.wait(for: 1, "n1's records")
            let n2Records = try await nodes.records2.all.wait(for: 2, "n2's records")
            #expect(n1Records.map(\.status) == [.invite])
            #expect(n2Records.map(\.status) == [.accepted, .hungUp])
            #expect(n2Records.last?.callType == .video)

            // The call is over: an ICE candidate now matches no call.
            alice.signal(to: "bob", #"{"type":"ice-candidate","callId":"c1","candidate":{"candidate":"late"}}"#)
            let late = try content(try await alice.received(5))
            #expect(late["type"] == "error")
            #expect(late["reason"] == "no-call")
            #expect(bob.outlet.messages.count == 32)
        }
    }

    @Test func invitesAndMessagesToUsersElsewhereOrNowhere() async throws {
        try await withTwoNodes { nodes in
            let alice = try await nodes.connect("alice", to: nodes.n1)
            let bob = try await nodes.connect("bob", to: nodes.n2)
            let carol = try await nodes.connect("carol", to: nodes.n2)

            // Plain text crosses the cluster, stamped.
            var text = ChatMessage()
            text.to = "bob"
            text.content = "hello bob"
            text.contentType = ContentType.text
            text.messageType = MessageType.direct
            text.from = "mallory"
            alice.send(text)
            let hello = try await bob.received(1)
            #expect(hello.content == "hello bob")
            #expect(hello.from == "alice")

            // Offline callee: call-failed, nothing in Redis.
            alice.signal(to: "nobody", #"{"type":"call-invite","callId":"c0"}"#)
            let offline = try content(try await alice.received(1))
            #expect(offline["type"] == "call-failed")
            #expect(offline["reason"] == "offline")
            #expect(try await nodes.raw.call("c0").isEmpty)

            // Busy: carol (n2) calls bob (n2); alice's invite of bob from n1 is refused.
            carol.signal(to: "bob", #"{"type":"call-invite","callId":"c1"}"#)
            _ = try await carol.received(1)
            alice.signal(to: "bob", #"{"type":"call-invite","callId":"c2"}"#)
            let busy = try content(try await alice.received(2))
            #expect(busy["type"] == "call-failed")
            #expect(busy["reason"] == "busy")
            #expect(try await nodes.raw.callOf("bob") == "c1")
        }
    }

    @Test func connectingOnAnotherNodeReplacesTheSession() async throws {
        try await withTwoNodes { nodes in
            let first = try await nodes.connect("alice", to: nodes.n1)
            let second = try await nodes.connect("alice", to: nodes.n2)

            let closes = try await first.outlet.closes.wait(for: 1, timeout: .seconds(5), "the close of the old session")
            #expect(closes == [CloseCode.sessionReplaced])
            let notice = try content(try await first.received(1))
            #expect(notice["type"] == "session-replaced")
            #expect(nodes.n1.sessionCount == 0)
            #expect(nodes.n2.sessionCount == 1)
            #expect(second.outlet.closes.count == 0)
            #expect(try await nodes.raw.presence("alice") == "n2")
            #expect(try await nodes.raw.users(of: "n1").isEmpty)
        }
    }

    @Test func aDeadNodesUserInACallIsHungUpAfterTheGrace() async throws {
        try await withTwoNodes { nodes in
            let (_, bob) = try await nodes.establish()

            // n1 goes away (as ClusterMembership's leave does), and n2's next heartbeat reaps it.
            let now = SwitchboardClock.system.nowMilliseconds()
            _ = try await ClusterScripts(redis: nodes.raw.redis, keys: ClusterKeys(), node: "n1").leave(now: now).get()
            let beat = try await ClusterScripts(redis: nodes.raw.redis, keys: ClusterKeys(), node: "n2")
                .beat(now: now, deadline: now - 3_000).get()
            #expect(beat.orphans == ["alice"])
            nodes.n2.orphaned(beat.orphans)

            // alice does not come back within the reconnect grace: bob's call ends.
            let grace = try #require(nodes.timers2.pending(.seconds(10)).first)
            grace.fire()
            let hangup = try await bob.received(2)
            #expect(hangup.from == "", "a server notice")
            #expect(try content(hangup)["type"] == "call-hangup")
            #expect(try content(hangup)["callId"] == "c1")
            #expect(try content(hangup)["reason"] == "peer-disconnected")
            #expect(try await nodes.raw.callOf("bob") == nil)
            #expect(try await nodes.raw.call("c1").isEmpty)
            #expect(nodes.n2.callCount == 0)
            let records = try await nodes.records2.all.wait(for: 2, "n2's records")
            #expect(records.last?.status == .hungUp)
            #expect(records.last?.endReason == "peer-disconnected")
        }
    }

    @Test func aNodeWritesBackWhatRedisLost() async throws {
        try await withTwoNodes { nodes in
            let (alice, bob) = try await nodes.establish()
            // Redis restarts empty; each node restores on reconnect.
            _ = try await nodes.raw.redis.execute("FLUSHALL")
            nodes.n1.restoreAfterReconnect()
            nodes.n2.restoreAfterReconnect()
            try await nodes.eventually("presence and the call restored") {
                let presence = [try await nodes.raw.presence("alice"), try await nodes.raw.presence("bob")]
                let calls = [try await nodes.raw.callOf("alice"), try await nodes.raw.callOf("bob")]
                let state = try await nodes.raw.call("c1")["state"]
                return presence == ["n1", "n2"] && calls == ["c1", "c1"] && state == "active"
            }
            #expect(try await nodes.raw.users(of: "n1") == ["alice"])
            #expect(try await nodes.raw.users(of: "n2") == ["bob"])

            // The restored call goes on: bob hangs up, alice hears it.
            bob.signal(to: "alice", #"{"type":"call-hangup","callId":"c1"}"#)
            let hangup = try await alice.received(3)
            #expect(try content(hangup)["type"] == "call-hangup")
            #expect(try await nodes.raw.callOf("alice") == nil)
        }
    }

    /// Sends ICE candidates `range` from alice to bob, yielding now and then so that replies interleave.
    private func sendCandidates(_ range: Range<Int>, from alice: Peer) async {
        for index in range {
            alice.signal(
                to: "bob",
                #"{"type":"ice-candidate","candidate":{"candidate":"candidate:\#(index)","sdpMid":"0"}}"#
            )
            if index % 10 == 0 { await Task.yield() }
        }
    }

    /// The candidate numbers among `messages`.
    private func candidateNumbers(_ messages: some Sequence<ChatMessage>) throws -> [Int] {
        try messages.compactMap { try content($0)["candidate"]?["candidate"]?.stringValue }
            .compactMap { Int($0.dropFirst("candidate:".count)) }
    }

    @Test func signalsKeepTheirOrderAcrossAnInboxOutage() async throws {
        try await withTwoNodes { nodes in
            let (alice, bob) = try await nodes.establish()
            let before = bob.outlet.messages.count
            await sendCandidates(0..<100, from: alice)
            _ = try await bob.outlet.messages.wait(for: before + 100, timeout: .seconds(5), "the first candidates")

            // bob's node's inbox subscriber drops (and comes back at once): parcels find no receiver, are held
            // and published again, while later ones keep coming.
            _ = try await nodes.raw.redis.execute("CLIENT", "KILL", "TYPE", "pubsub")
            await sendCandidates(100..<300, from: alice)

            let received = try await bob.outlet.messages.wait(for: before + 300, timeout: .seconds(10), "candidates")
            #expect(try candidateNumbers(received[before...]) == Array(0..<300), "relayed in the order sent (PROTOCOL.md §3)")
            #expect(
                alice.outlet.messages.count == 2,
                "no notice for alice: \(alice.outlet.messages.all.dropFirst(2).map(\.content))"
            )
        }
    }

    @Test func signalsPublishedJustBeforeTheInboxDropsAreNotLostSilently() async throws {
        try await withTwoNodes { nodes in
            let (alice, bob) = try await nodes.establish()
            let before = bob.outlet.messages.count
            // PUBLISH counts bob's node as a receiver, but Redis may still hold the bytes in the subscriber's
            // output buffer when the connection drops (CLIENT KILL, a reset, client-output-buffer-limit).
            await sendCandidates(0..<100, from: alice)
            _ = try await nodes.raw.redis.execute("CLIENT", "KILL", "TYPE", "pubsub")
            await sendCandidates(100..<120, from: alice)

            // Everything arrives, or alice is told.
            _ = try? await bob.outlet.messages.wait(for: before + 120, timeout: .seconds(4), "candidates")
            let numbers = try candidateNumbers(bob.outlet.messages.all[before...])
            let missing = Set(0..<120).subtracting(numbers).sorted()
            let notices = alice.outlet.messages.all.dropFirst(2)
            #expect(numbers == numbers.sorted(), "what arrives, arrives in order")
            // Lost in the killed connection's buffer: bob's node sees the gap (or, for a lost tail, its
            // resubscribe) and asks alice's node, which publishes them again.
            #expect(missing.isEmpty, "lost \(missing); notices to alice: \(notices.map(\.content))")
        }
    }
}
