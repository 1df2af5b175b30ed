import MetricsTestKit
import NIOCore
import RedisTestSupport
import Testing

@testable import RedisWire

@Suite struct RedisPublishRecognitionTests {
    @Test(arguments: ["PUBLISH", "publish", "PuBlIsH"])
    func publishInAnyCaseAndForm(_ name: String) {
        #expect(RESPArgument(name).isPublish)
        #expect(RESPArgument(Array(name.utf8)).isPublish)
        #expect(RESPArgument(ByteBuffer(string: name)).isPublish)
    }

    @Test(arguments: ["PUBSUB", "PUBLISHX", "SPUBLISH", "PUBLIS", "P\u{0}BLISH", "PUBLIS\u{0}", "", "GET"])
    func otherCommandsAreNot(_ name: String) {
        #expect(!RESPArgument(name).isPublish)
        #expect(!RESPArgument(ByteBuffer(string: name)).isPublish)
    }
}

@Suite("RedisMetrics against a real redis-server", .timeLimit(.minutes(1)))
struct RedisMetricsLiveTests {
    let backend = TestMetrics()

    func latencies() throws -> [Int64] {
        try backend.expectTimer(RedisMetrics.Name.commandDuration).values
    }

    func messages(_ direction: String) throws -> Int64 {
        try backend.expectCounter(RedisMetrics.Name.pubSubMessages, [("direction", direction)]).totalValue
    }

    @Test func everyReplyRecordsItsCommandsLatency() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(
            configuration: RedisConnectionConfiguration(url: server.url()),
            metrics: RedisMetrics(factory: backend)
        )
        defer { connection.close() }
        #expect(try latencies().isEmpty)

        try await connection.execute("SET", "k", "v")
        #expect(try await connection.execute("GET", "k") == .bulkString(ByteBuffer(string: "v")))
        await #expect(throws: RedisError.self) { try await connection.execute("INCR", "k") }  // an error reply
        let batch = await connection.execute(batch: [["PING"], ["PING"], ["PING"]])
        #expect(batch.count == 3)

        let values = try latencies()
        #expect(values.count == 6)
        #expect(values.allSatisfy { $0 > 0 && $0 < 5_000_000_000 }, "\(values)")
    }

    @Test func publishesAndReceivedMessagesAreCounted() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let metrics = RedisMetrics(factory: backend)
        let publisher = try await RedisConnection.connect(
            configuration: RedisConnectionConfiguration(url: server.url()),
            metrics: metrics
        )
        defer { publisher.close() }
        let (received, continuation) = AsyncStream.makeStream(of: RedisPubSubMessage.self)
        let subscriber = RedisSubscriber(
            configuration: try RedisConnectionConfiguration(url: server.url()),
            channels: ["webrtc:signals"],
            pingInterval: nil,
            metrics: metrics
        ) { message in
            continuation.yield(message)
        }
        let states = subscriber.stateChanges()

        try await whileRunning(subscriber) {
            try await awaitState(.connected, in: states)
            #expect(try await publisher.execute("PUBLISH", "webrtc:signals", "one") == .integer(1))
            #expect(try await publisher.execute("publish", "webrtc:signals", "two") == .integer(1))
            #expect(try await publisher.execute("PUBLISH", "elsewhere", "nobody") == .integer(0))
            try await publisher.execute("PUBSUB", "CHANNELS")
            #expect(try messages("out") == 3)

            let count = try await withTimeout(.seconds(10), "two messages") {
                var count = 0
                for await _ in received {
                    count += 1
                    if count == 2 { break }
                }
                return count
            }
            #expect(count == 2)
            // Counted before the message is handed on.
            #expect(try messages("in") == 2)
        }
    }
}
