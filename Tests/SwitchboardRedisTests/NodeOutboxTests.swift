import Foundation
import NIOCore
import NIOPosix
import RedisTestSupport
import Synchronization
import Testing

@testable import RedisWire  // RESPArgument's bytes, to read what the outbox sends
@testable import SwitchboardRedis

/// A failed parcel: its number and why.
private struct Failure: Sendable, Equatable {
    var index: Int
    var failure: OutboxFailure
    /// When it failed, on the continuous clock.
    var at: ContinuousClock.Instant

    static func == (lhs: Failure, rhs: Failure) -> Bool { lhs.index == rhs.index && lhs.failure == rhs.failure }
}

@Suite("NodeOutbox against a real redis-server", .timeLimit(.minutes(1)))
struct NodeOutboxTests {
    private let keys = ClusterKeys()

    private func outbox(
        _ client: RedisClient,
        retryInterval: Duration = .milliseconds(20),
        retryWindow: Duration
    ) -> NodeOutbox {
        var limits = ClusterBufferLimits.standard
        limits.retryMaxAge = retryWindow
        return NodeOutbox(
            redis: client,
            nodesKey: keys.nodes,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            retryInterval: retryInterval,
            limits: limits,
            channel: keys.inbox
        )
    }

    /// A subscriber of n2's inbox whose messages are collected as strings.
    private func inboxSubscriber(_ server: RedisServerProcess) throws -> (RedisSubscriber, Collected<String>) {
        let received = Collected<String>()
        let subscriber = RedisSubscriber(
            configuration: try RedisConnectionConfiguration(url: server.url()),
            channels: [keys.inbox("n2")]
        ) { message in
            // What one tick publishes to a node arrives as one bundle.
            for envelope in EnvelopeBundle.split(message.payload) ?? [] { received.append(parcelText(envelope)) }
        }
        return (subscriber, received)
    }

    /// Gives `node` a live heartbeat in `webrtc:nodes`, as its membership would.
    private func alive(_ node: String, _ client: RedisClient) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await client.execute("ZADD", RESPArgument(keys.nodes), RESPArgument(now), RESPArgument(node))
    }

    /// Publishes `range`, its failures going to `failures`, and waits until the outbox's loop has sent
    /// them (what it batched in one tick).
    private func publish(
        _ range: Range<Int>,
        to node: String = "n2",
        with outbox: NodeOutbox,
        failures: Collected<Failure>
    ) async throws {
        outbox.onFailure { failure, _, envelope in
            failures.append(Failure(index: Int(parcelText(envelope)) ?? -1, failure: failure, at: .now))
        }
        for index in range { outbox.publish(parcel("\(index)"), to: node, on: outbox.eventLoop) }
        try await outbox.eventLoop.submit {}.get()
    }

    @Test func parcelsArriveInPublishOrder() async throws {
        try await withLiveRedis { server, client in
            let (subscriber, received) = try inboxSubscriber(server)
            let states = subscriber.stateChanges()
            try await whileRunning(subscriber) {
                try await awaitState(.connected, in: states)
                let outbox = outbox(client, retryWindow: .seconds(5))
                let failures = Collected<Failure>()
                try await publish(0..<500, with: outbox, failures: failures)

                let messages = try await received.wait(for: 500, "messages")
                #expect(messages == (0..<500).map(String.init))
                // Everything was received, so nothing fails.
                #expect(try await client.execute("PING") == .simpleString("PONG"))
                #expect(failures.all.isEmpty)
            }
        }
    }

    @Test func replayPublishesKeptParcelsAgainWithTheirNumbers() async throws {
        try await withLiveRedis { server, client in
            let numbers = Collected<UInt64>()
            let subscriber = RedisSubscriber(
                configuration: try RedisConnectionConfiguration(url: server.url()),
                channels: [keys.inbox("n2")]
            ) { message in
                for bytes in EnvelopeBundle.split(message.payload) ?? [] {
                    if let envelope = try? Envelope(decoding: bytes) { numbers.append(envelope.sequence) }
                }
            }
            let states = subscriber.stateChanges()
            try await whileRunning(subscriber) {
                try await awaitState(.connected, in: states)
                var limits = ClusterBufferLimits.standard
                limits.replayMaxMessages = 6
                let outbox = NodeOutbox(
                    redis: client,
                    nodesKey: keys.nodes,
                    eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                    limits: limits,
                    channel: keys.inbox
                )
                try await publish(0..<10, with: outbox, failures: Collected<Failure>())
                _ = try await numbers.wait(for: 10, "the parcels")
                // A parcel is kept once its PUBLISH reply is in; PING's reply comes after all of them.
                #expect(try await client.execute("PING") == .simpleString("PONG"))
                // Only the last 6 (4...9) are kept: 2 and 3 are gone, 4 and 5 come again.
                #expect(outbox.replay(to: "n2", from: 2, through: 5) == 2)
                #expect(try await numbers.wait(for: 12, "the replayed parcels") == Array(0..<10) + [4, 5])
                #expect(outbox.replay(to: "n2", from: 9, through: .max) == 1)
                #expect(outbox.replay(to: "n3", from: 0, through: .max) == 0, "nothing was sent to n3")
            }
        }
    }

    @Test func aParcelNobodyReceivesFailsAfterTheRetryWindow() async throws {
        try await withLiveRedis { _, client in
            let window = Duration.milliseconds(300)
            try await alive("n2", client)
            let outbox = outbox(client, retryInterval: .milliseconds(50), retryWindow: window)
            let failures = Collected<Failure>()
            let started = ContinuousClock.now
            try await publish(0..<3, with: outbox, failures: failures)

            let failed = try await failures.wait(for: 3, timeout: .seconds(5), "failures")
            #expect(failed.map(\.index) == [0, 1, 2])
            #expect(failed.allSatisfy { $0.failure == .noReceiver })
            for failure in failed {
                let elapsed = failure.at - started
                #expect(elapsed >= window, "failed after \(elapsed), before the retry window")
                #expect(elapsed < window + .seconds(2), "failed only after \(elapsed)")
            }
        }
    }

    @Test func aSubscriberWithinTheWindowReceivesEverythingHeldInOrder() async throws {
        try await withLiveRedis { server, client in
            try await alive("n2", client)
            let outbox = outbox(client, retryInterval: .milliseconds(20), retryWindow: .seconds(5))
            let failures = Collected<Failure>()
            try await publish(0..<1000, with: outbox, failures: failures)
            // The PUBLISHes went out on this connection before the PING: all were answered 0 receivers.
            #expect(
                try await client.execute("PUBSUB", "NUMSUB", RESPArgument(keys.inbox("n2")))
                    == .array([.bulkString(ByteBuffer(string: keys.inbox("n2"))), .integer(0)])
            )
            #expect(try await client.execute("PING") == .simpleString("PONG"))

            let (subscriber, received) = try inboxSubscriber(server)
            let states = subscriber.stateChanges()
            try await whileRunning(subscriber) {
                try await awaitState(.connected, in: states)
                // Published after the subscriber came: after the held ones.
                try await publish(1000..<1050, with: outbox, failures: failures)

                let messages = try await received.wait(for: 1050, "messages")
                #expect(messages.count == 1050)
                #expect(Set(messages) == Set((0..<1050).map(String.init)), "every parcel arrives, once")
                #expect(failures.all.isEmpty)
                // A parcel in flight when an earlier one missed is held in publish order, not after
                // parcels held meanwhile. (Parcels published while the first misses are still being
                // answered may go out before the retry: the receiver's InboxSequencer puts those back.)
                let held = messages.filter { Int($0)! < 1000 }
                #expect(held == (0..<1000).map(String.init), "held parcels arrive in publish order")
            }
        }
    }

    @Test(arguments: [false, true])
    func parcelsForANodeThatIsGoneFailAtTheFirstRetry(nodeLeft: Bool) async throws {
        try await withLiveRedis { _, client in
            if nodeLeft {
                // `leave` sets the heartbeat to 0; otherwise the node was reaped (no entry at all).
                _ = try await client.execute("ZADD", RESPArgument(keys.nodes), 0, "n2")
            }
            let outbox = outbox(client, retryInterval: .milliseconds(50), retryWindow: .seconds(10))
            let failures = Collected<Failure>()
            let started = ContinuousClock.now
            try await publish(0..<3, with: outbox, failures: failures)

            let failed = try await failures.wait(for: 3, timeout: .seconds(5), "failures")
            #expect(failed.map(\.index) == [0, 1, 2])
            #expect(failed.allSatisfy { $0.failure == .noReceiver })
            #expect(failed.allSatisfy { $0.at - started < .seconds(5) }, "failed only after the retry window")
        }
    }

    @Test func aCommandErrorFailsParcelsAsUnreachable() async throws {
        try await withLiveRedis { server, client in
            let states = client.stateChanges()
            try await alive("n2", client)
            let outbox = outbox(client, retryInterval: .milliseconds(50), retryWindow: .seconds(10))
            let failures = Collected<Failure>()
            // Held (nobody listens), then Redis dies: the retry fails, well before the window.
            try await publish(0..<1, with: outbox, failures: failures)
            #expect(try await client.execute("PING") == .simpleString("PONG"))
            let started = ContinuousClock.now
            server.kill()
            try await awaitState(.disconnected, in: states)
            // A parcel for another node is sent at once, and fails at once.
            try await publish(1..<2, to: "n3", with: outbox, failures: failures)
            let failed = try await failures.wait(for: 2, timeout: .seconds(5), "failures")
            let direct = try #require(failed.first { $0.index == 1 })
            let held = try #require(failed.first { $0.index == 0 })
            if case .unreachable = direct.failure {
            } else {
                Issue.record("a PUBLISH that failed answered \(direct.failure)")
            }
            #expect(held.at - started < .seconds(5))
            // A failed liveness check is no verdict: the parcel fails as unreachable, not as gone.
            if case .unreachable = held.failure {
            } else {
                Issue.record("the held parcel failed with \(held.failure) while Redis was unreachable")
            }
        }
    }
}

/// A command sender whose replies the test gives, one by one.
private final class ScriptedSender: RedisCommandSender {
    let eventLoop: any EventLoop
    /// The payloads of the PUBLISHes, in the order they were sent.
    let sent = Collected<String>()
    private let promises = Mutex<[EventLoopPromise<RESPValue>]>([])

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        promises.withLock { $0.append(promise) }
        sent.append(command.last.map(Self.text) ?? "")
        return promise.futureResult
    }

    private static func text(_ argument: RESPArgument) -> String {
        switch argument.storage {
        case .string(let string): string
        case .buffer(let buffer): parcelText(buffer)
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        }
    }

    func send(batch commands: [[RESPArgument]]) -> [EventLoopFuture<RESPValue>] {
        commands.map(send)
    }

    /// Answers the `index`th command with `receivers`, on the event loop (its callbacks have run on return).
    func answer(_ index: Int, receivers: Int64) async throws {
        try await answer(index, .integer(receivers))
    }

    func answer(_ index: Int, _ reply: RESPValue) async throws {
        let promise = promises.withLock { $0[index] }
        try await eventLoop.submit { promise.succeed(reply) }.get()
    }
}

@Suite("NodeOutbox ordering with scripted replies", .timeLimit(.minutes(1)))
struct NodeOutboxOrderingTests {
    /// P0 is in flight and P1 gathers behind it; P0 finds no receiver and is held, P1 with it; P2 is
    /// published (and held behind them). The retry must send P0, P1, P2: the order they were published in.
    @Test func parcelsBehindOneThatMissedAreRetriedInPublishOrder() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let sender = ScriptedSender(eventLoop: eventLoop)
        var limits = ClusterBufferLimits.standard
        limits.retryMaxAge = .seconds(10)
        let outbox = NodeOutbox(
            redis: sender,
            nodesKey: ClusterKeys().nodes,
            eventLoop: eventLoop,
            retryInterval: .milliseconds(100),
            limits: limits,
            channel: ClusterKeys().inbox
        )
        let failures = Collected<OutboxFailure>()
        /// Publishes in a tick of its own (what one tick publishes goes out as one bundle), and waits
        /// until the tick has ended.
        outbox.onFailure { failure, _, _ in failures.append(failure) }
        func publish(_ index: Int) async throws {
            outbox.publish(parcel("P\(index)"), to: "n2", on: eventLoop)
            try await eventLoop.submit {}.get()
        }
        try await publish(0)
        try await publish(1)
        try await sender.sent.wait(for: 1, "the first PUBLISH")
        #expect(sender.sent.all == ["P0"], "P1 gathers behind P0")
        try await sender.answer(0, receivers: 0)
        try await publish(2)
        // Before the retry, the outbox checks that n2 is alive (ZSCORE webrtc:nodes n2).
        try await sender.sent.wait(for: 2, "the liveness check")
        #expect(sender.sent.all == ["P0", "n2"], "P1 and P2 are held behind P0, not sent")
        try await sender.answer(1, .bulkString(ByteBuffer(string: "1700000000000")))

        let sent = try await sender.sent.wait(for: 5, "the retries")
        #expect(Array(sent.dropFirst(2)) == ["P0", "P1", "P2"], "the retry keeps publish order, each once")
        for index in 2..<5 { try await sender.answer(index, receivers: 1) }
        #expect(failures.all.isEmpty)
    }
}
