import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import SwitchboardRedis

/// What the outbox keeps per destination is bounded in bytes, count and age (PROTOCOL.md §9). Time is
/// the `EmbeddedEventLoop`'s: retries and age checks run as the test advances it, no wall clock.
@Suite struct NodeOutboxLimitsTests {
    /// A failure reported for a parcel: its text (decoded from the envelope handed to the handler), why,
    /// and when on the event loop's clock.
    struct Failure: Sendable, Equatable {
        var text: String
        var failure: OutboxFailure
        var at: Duration = .zero

        static func == (lhs: Failure, rhs: Failure) -> Bool { lhs.text == rhs.text && lhs.failure == rhs.failure }
    }

    final class Failures: Sendable {
        private let items = Mutex<[Failure]>([])
        func append(_ failure: Failure) { items.withLock { $0.append(failure) } }
        var all: [Failure] { items.withLock { $0 } }
    }

    /// What one parcel of `parcel("Pn")` counts against the limits.
    private let cost = parcel("P0").readableBytes + NodeOutbox.Parcel.overhead

    private func outbox(
        _ redis: EmbeddedRedis,
        publishWindow: Duration = .zero,
        _ configure: (inout ClusterBufferLimits) -> Void
    ) -> NodeOutbox {
        var limits = ClusterBufferLimits.standard
        configure(&limits)
        return NodeOutbox(
            redis: redis,
            nodesKey: ClusterKeys().nodes,
            eventLoop: redis.eventLoop,
            retryInterval: .milliseconds(100),
            publishWindow: publishWindow,
            limits: limits,
            channel: ClusterKeys().inbox
        )
    }

    /// Publishes each of `texts` to n2 in a tick of its own (one `PUBLISH` each), running the loop after
    /// each; the outbox's failures go to `failures`.
    private func publish(_ texts: [String], with outbox: NodeOutbox, on loop: EmbeddedEventLoop, _ failures: Failures) {
        outbox.onFailure { failure, node, envelope in
            #expect(node == "n2")
            let at = Duration.nanoseconds(Int64(loop.now.uptimeNanoseconds))
            failures.append(Failure(text: parcelText(envelope), failure: failure, at: at))
        }
        for text in texts {
            outbox.publish(parcel(text), to: "n2", on: loop)
            loop.run()
        }
    }

    // MARK: Batched per tick

    @Test func whatOneTickPublishesGoesOutAsOnePublishPerDestination() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis) { _ in }
        for (text, node) in [("P0", "n2"), ("Q0", "n3"), ("P1", "n2"), ("P2", "n2")] {
            outbox.publish(parcel(text), to: node, on: loop)
        }
        #expect(redis.publishCommands == 0, "nothing goes out before the tick ends")
        loop.run()
        #expect(redis.publishCommands == 2, "one bundle for n2, one envelope for n3")
        #expect(
            redis.published == [
                .init(text: "P0", sequence: 0), .init(text: "P1", sequence: 1),
                .init(text: "P2", sequence: 2), .init(text: "Q0", sequence: 0),
            ]
        )
        #expect(outbox.usage(of: "n2").kept.count == 3 && outbox.usage(of: "n3").kept.count == 1)
    }

    /// Within the publish window after a `PUBLISH`, what each tick publishes to that node waits; at
    /// the window's end, on the outbox's event loop, it goes as one bundle.
    @Test func whatFollowsWithinThePublishWindowGoesAtItsEndAsOnePublish() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis, publishWindow: .milliseconds(5)) { _ in }
        publish(["P0", "P1", "P2"], with: outbox, on: loop, Failures())
        #expect(redis.publishedTexts == ["P0"], "P0 went at once; P1 and P2 wait for the window's end")
        loop.advanceTime(by: .microseconds(4_999))
        #expect(redis.publishCommands == 1)
        loop.advanceTime(by: .microseconds(1))
        #expect(redis.publishCommands == 2, "one PUBLISH for both")
        #expect(
            redis.published == [.init(text: "P0", sequence: 0), .init(text: "P1", sequence: 1), .init(text: "P2", sequence: 2)]
        )
        loop.advanceTime(by: .milliseconds(10))
        publish(["P3"], with: outbox, on: loop, Failures())
        #expect(redis.publishCommands == 3, "after a quiet window, at once")
    }

    // MARK: Held for a retry

    @Test func heldParcelsBeyondTheBytesGiveWayOldestFirstAndTheirSendersAreTold() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 0)
        let outbox = outbox(redis) { $0.retryMaxBytes = 3 * cost }
        let failures = Failures()
        // P0 finds no receiver and is held; P1 and P2 are held behind it: the limit is reached.
        publish(["P0", "P1", "P2"], with: outbox, on: loop, failures)
        #expect(redis.publishedTexts == ["P0"])
        #expect(outbox.usage(of: "n2").held == .init(bytes: 3 * cost, count: 3))
        #expect(failures.all.isEmpty)

        publish(["P3"], with: outbox, on: loop, failures)
        #expect(failures.all == [Failure(text: "P0", failure: .bufferFull)], "the oldest gives way, its sender told")
        #expect(outbox.usage(of: "n2").held == .init(bytes: 3 * cost, count: 3))

        // The retry sends what is left, in order, with the numbers they were given.
        loop.advanceTime(by: .milliseconds(100))
        #expect(
            Array(redis.published.dropFirst()) == [
                .init(text: "P1", sequence: 1), .init(text: "P2", sequence: 2),
                .init(text: "P3", sequence: 3),
            ]
        )
    }

    @Test func heldParcelsBeyondTheCountGiveWayOldestFirst() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 0)
        let outbox = outbox(redis) { $0.retryMaxMessages = 2 }
        let failures = Failures()
        publish(["P0", "P1", "P2", "P3"], with: outbox, on: loop, failures)
        #expect(failures.all == [Failure(text: "P0", failure: .bufferFull), Failure(text: "P1", failure: .bufferFull)])
        #expect(outbox.usage(of: "n2").held.count == 2)
    }

    @Test func parcelsInFlightCountTooAndANewOneThatCannotFitFailsUnnumbered() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: nil)  // Redis has not answered yet
        let outbox = outbox(redis) { $0.retryMaxMessages = 2 }
        let failures = Failures()
        publish(["P0", "P1"], with: outbox, on: loop, failures)
        #expect(outbox.usage(of: "n2").inFlight == .init(bytes: 2 * cost, count: 2))
        publish(["P2"], with: outbox, on: loop, failures)
        #expect(failures.all == [Failure(text: "P2", failure: .bufferFull)], "no room beside two in flight: fails at once")
        #expect(redis.publishedTexts == ["P0"], "and is not sent; P1 gathers behind P0")

        redis.answerPending(receivers: 1)
        #expect(redis.publishedTexts == ["P0", "P1"], "P1 goes with P0's answer")
        redis.answerPending(receivers: 1)
        #expect(outbox.usage(of: "n2").inFlight == .init())
        publish(["P3"], with: outbox, on: loop, failures)
        // P2 took no number: the receiver sees no gap.
        #expect(redis.published.last == .init(text: "P3", sequence: 2))
        #expect(failures.all.count == 1)
    }

    @Test func aParcelTooBigForTheLimitFailsAtOnce() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis) { $0.retryMaxBytes = cost }
        let failures = Failures()
        publish(["P0", "a parcel longer than the limit"], with: outbox, on: loop, failures)
        #expect(failures.all == [Failure(text: "a parcel longer than the limit", failure: .bufferFull)])
        #expect(redis.publishedTexts == ["P0"])
    }

    @Test func eachHeldParcelFailsOnceItWasHeldForTheRetryAge() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 0)
        let outbox = outbox(redis) { $0.retryMaxAge = .seconds(2) }
        let failures = Failures()
        publish(["P0"], with: outbox, on: loop, failures)  // held from 0 s
        for _ in 0..<10 { loop.advanceTime(by: .milliseconds(100)) }
        publish(["P1"], with: outbox, on: loop, failures)  // held (behind P0's retries) from 1 s
        for _ in 0..<25 { loop.advanceTime(by: .milliseconds(100)) }  // to 3.5 s
        #expect(failures.all == [Failure(text: "P0", failure: .noReceiver), Failure(text: "P1", failure: .noReceiver)])
        let times = failures.all.map(\.at)
        print("held parcels failed at \(times) (retry age 2 s, retries every 100 ms)")
        #expect(times[0] >= .seconds(2) && times[0] <= .milliseconds(2100), "P0 failed at \(times[0])")
        #expect(times[1] >= .seconds(3) && times[1] <= .milliseconds(3100), "P1 failed at \(times[1])")
        #expect(outbox.usage(of: "n2").held == .init() && outbox.usage(of: "n2").inFlight == .init())
    }

    // MARK: Kept for a replay

    @Test func theReplayKeepsTheNewestWithinTheBytes() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis) { $0.replayMaxBytes = 3 * cost }
        publish((0..<5).map { "P\($0)" }, with: outbox, on: loop, Failures())
        #expect(outbox.usage(of: "n2").kept == .init(bytes: 3 * cost, count: 3))
        #expect(outbox.replay(to: "n2", from: 0, through: .max) == 3)
        loop.run()
        #expect(
            Array(redis.published.dropFirst(5)) == [
                .init(text: "P2", sequence: 2), .init(text: "P3", sequence: 3),
                .init(text: "P4", sequence: 4),
            ]
        )
        #expect(outbox.usage(of: "n2").kept.count == 3, "a replayed parcel is not kept twice")
    }

    @Test func theReplayKeepsTheNewestWithinTheCount() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis) { $0.replayMaxMessages = 2 }
        publish((0..<5).map { "P\($0)" }, with: outbox, on: loop, Failures())
        #expect(outbox.replay(to: "n2", from: 0, through: 2) == 0, "P0...P2 are no longer kept")
        #expect(outbox.replay(to: "n2", from: 0, through: .max) == 2)
    }

    @Test func keptParcelsGoAfterTheReplayAgeAlsoWhenNothingMoreIsSent() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis) { $0.replayMaxAge = .seconds(10) }
        publish(["P0", "P1"], with: outbox, on: loop, Failures())
        loop.advanceTime(by: .seconds(6))
        publish(["P2"], with: outbox, on: loop, Failures())
        #expect(outbox.usage(of: "n2").kept.count == 3)
        loop.advanceTime(by: .milliseconds(3999))
        #expect(outbox.usage(of: "n2").kept.count == 3)
        loop.advanceTime(by: .milliseconds(1))  // 10 s: P0 and P1 are past their age
        #expect(outbox.usage(of: "n2").kept == .init(bytes: cost, count: 1))
        #expect(outbox.replay(to: "n2", from: 0, through: .max) == 1)
        loop.run()
        loop.advanceTime(by: .seconds(6))  // 16 s: P2 too; nothing is kept, no bytes
        #expect(outbox.usage(of: "n2").kept == .init())
        #expect(outbox.replay(to: "n2", from: 0, through: .max) == 0)
    }

    @Test func aReplaySendsNoMoreThanFitsBesideWhatIsInFlight() {
        let loop = EmbeddedEventLoop()
        let redis = EmbeddedRedis(loop, receivers: 1)
        let outbox = outbox(redis) { $0.retryMaxMessages = 3 }
        publish(["P0", "P1", "P2"], with: outbox, on: loop, Failures())
        redis.receivers = nil
        publish(["P3"], with: outbox, on: loop, Failures())  // one in flight: room for two more
        #expect(outbox.replay(to: "n2", from: 0, through: .max) == 2)
        #expect(outbox.usage(of: "n2").inFlight.count == 3)
        #expect(outbox.replay(to: "n2", from: 0, through: .max) == 0)
        redis.answerPending(receivers: 1)
        #expect(outbox.usage(of: "n2").inFlight == .init())
        #expect(outbox.usage(of: "n2").kept.count == 4, "P0...P3, each once")
    }
}
