import NIOCore
import RedisTestSupport
import RedisWire
import Synchronization
import Testing

@Suite("RedisConnection against a real redis-server", .timeLimit(.minutes(1)))
struct RedisConnectionLiveTests {
    @Test func setAndGetBinaryValue() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(url: server.url())
        defer { connection.close() }

        let value: [UInt8] = Array(0...255) + [13, 10, 0, 13, 10]
        #expect(try await connection.execute("SET", "binary\r\nkey\0", RESPArgument(value)) == .simpleString("OK"))
        #expect(try await connection.execute("GET", "binary\r\nkey\0").bytes == value)
        #expect(try await connection.execute("GET", "missing") == .bulkString(nil))
        #expect(try await connection.execute("SET", "empty", "") == .simpleString("OK"))
        #expect(try await connection.execute("GET", "empty") == .bulkString(ByteBuffer()))
    }

    @Test func tenThousandPipelinedIncrsReplyInOrder() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(url: server.url())
        defer { connection.close() }

        // From a thread that is not the event loop: the outbox path.
        let futures = (0..<10_000).map { _ in connection.send(["INCR", "counter"]) }
        var values: [Int64] = []
        for future in futures { values.append(try await future.get().integer ?? -1) }
        #expect(values == Array(1...10_000))

        // On the event loop: written at once, flushed once at the end of the tick.
        let onLoop = try await connection.eventLoop.flatSubmit {
            EventLoopFuture.whenAllSucceed(
                (0..<10_000).map { _ in connection.send(["INCR", "counter"]) },
                on: connection.eventLoop
            )
        }.get()
        #expect(onLoop.map { $0.integer ?? -1 } == Array(10_001...20_000))

        let batch = await connection.execute(batch: (0..<100).map { _ in ["INCR", "counter"] })
        #expect(batch.map { try? $0.get().integer } == (20_001...20_100).map { Optional($0) })
    }

    /// A batch with one callback (no future per command): each reply comes with its command's index, in
    /// order, on the connection's event loop; an error reply fails only its command, and a command that
    /// cannot be encoded fails at once.
    @Test func aBatchWithOneCallbackGetsEachReplyByIndexInOrder() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(url: server.url())
        defer { connection.close() }

        let replies = Mutex<[(Int, Result<RESPValue, RedisError>)]>([])
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            let commands: [[RESPArgument]] = [["SET", "k", "v"], [], ["NOSUCHCOMMAND"], ["GET", "k"]]
            let eventLoop = connection.eventLoop
            connection.send(batch: commands) { index, result in
                let count = replies.withLock { replies in
                    replies.append((index, result))
                    return replies.count
                }
                // The command that cannot be encoded is answered at once, on the caller's thread.
                if index != 1 { #expect(eventLoop.inEventLoop) }
                if count == commands.count { done.resume() }
            }
        }
        let results = replies.withLock { $0 }
        #expect(results.map(\.0) == [1, 0, 2, 3], "the empty command at once, then the replies in order")
        #expect((try? results[1].1.get()) == .simpleString("OK"))
        if case .failure(let error) = results[0].1 {
            #expect(error.code == .invalidCommand)
        } else {
            Issue.record("[] must fail")
        }
        if case .failure(let error) = results[2].1 {
            #expect(error.serverErrorPrefix == "ERR")
        } else {
            Issue.record("must fail")
        }
        #expect((try? results[3].1.get()) == .bulkString(ByteBuffer(string: "v")))
    }

    @Test func errorRepliesFailOnlyTheirCommand() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(url: server.url())
        defer { connection.close() }

        try await connection.execute("SET", "text", "x")
        let results = await connection.execute(batch: [["LPUSH", "text", "y"], ["NOSUCHCOMMAND"], ["GET", "text"]])
        #expect(throws: RedisError.self) { try results[0].get() }
        if case .failure(let error) = results[0] {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "WRONGTYPE")
        }
        if case .failure(let error) = results[1] {
            #expect(error.code == .server)
            #expect(error.serverErrorPrefix == "ERR")
        } else {
            Issue.record("unknown command should fail")
        }
        #expect(try results[2].get() == .bulkString(ByteBuffer(string: "x")))
        #expect(try await connection.execute("MULTI") == .simpleString("OK"))
        #expect(try await connection.execute("INCR", "text") == .simpleString("QUEUED"))
        // An error inside EXEC's results is a value, not a failure.
        #expect(try await connection.execute("EXEC") == .array([.error("ERR value is not an integer or out of range")]))
        #expect(connection.isActive)
    }

    @Test func authenticatesWithThePasswordFromTheURL() async throws {
        let server = try await RedisServerProcess.started(password: "s3cret:pass")
        defer { server.stop() }

        let url = "redis://:s3cret%3Apass@127.0.0.1:\(server.port)"
        let connection = try await RedisConnection.connect(url: url)
        defer { connection.close() }
        #expect(try await connection.execute("PING") == .simpleString("PONG"))

        let anonymous = try await RedisConnection.connect(url: "redis://127.0.0.1:\(server.port)")
        defer { anonymous.close() }
        let noAuth = await #expect(throws: RedisError.self) { try await anonymous.execute("PING") }
        #expect(noAuth?.serverErrorPrefix == "NOAUTH")

        let wrong = await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(url: "redis://:wrong@127.0.0.1:\(server.port)")
        }
        #expect(wrong?.code == .connectFailed)
    }

    @Test func selectsTheDatabaseFromTheURL() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let db3 = try await RedisConnection.connect(url: server.url(database: 3))
        defer { db3.close() }
        let db0 = try await RedisConnection.connect(url: server.url())
        defer { db0.close() }

        try await db3.execute("SET", "where", "three")
        #expect(try await db3.execute("GET", "where").string == "three")
        #expect(try await db0.execute("GET", "where") == .bulkString(nil))
        #expect(try await db0.execute("SELECT", 3) == .simpleString("OK"))
        #expect(try await db0.execute("GET", "where").string == "three")
        #expect(try await db3.execute("CLIENT", "INFO").string?.contains(" db=3 ") == true)
    }

    @Test func commandTimeoutFailsPendingCommandsAndClosesTheConnection() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(url: server.url(), commandTimeout: .milliseconds(200))
        defer { connection.close() }

        // Suspended, the server never answers: only the timeout can end these commands.
        server.suspend()
        defer { server.resume() }
        let clock = ContinuousClock()
        let started = clock.now
        let first = connection.send(["GET", "k"])
        let second = connection.send(["GET", "k"])
        let error = await #expect(throws: RedisError.self) { try await first.get() }
        let elapsed = clock.now - started
        #expect(error?.code == .timeout)
        #expect(elapsed >= .milliseconds(190), "timed out after \(elapsed)")
        let secondError = await #expect(throws: RedisError.self) { try await second.get() }
        #expect(secondError?.code == .timeout)
        try await connection.closeFuture.get()
        #expect(!connection.isActive)
        let afterwards = await #expect(throws: RedisError.self) { try await connection.execute("PING") }
        #expect(afterwards?.code == .connectionClosed)
    }

    @Test func connectFailsWithATypedError() async throws {
        let server = try RedisServerProcess()  // never started: nothing listens on the port
        let error = await #expect(throws: RedisError.self) {
            try await RedisConnection.connect(url: server.url())
        }
        #expect(error?.code == .connectFailed)
    }
}
