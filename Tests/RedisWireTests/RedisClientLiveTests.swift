import Logging
import NIOCore
import RedisTestSupport
import RedisWire
import Testing

@Suite("RedisClient reconnects", .timeLimit(.minutes(1)))
struct RedisClientLiveTests {
    @Test func failsFastWithUnavailableWhenNotRunning() async throws {
        let client = try RedisClient(url: "redis://127.0.0.1:1")
        #expect(!client.isConnected)
        let error = await #expect(throws: RedisError.self) { try await client.execute("PING") }
        #expect(error?.code == .unavailable)
        let batch = await client.execute(batch: [["PING"], ["PING"]])
        #expect(batch.allSatisfy { if case .failure(let error) = $0 { error.code == .unavailable } else { false } })
    }

    @Test func reconnectsAfterTheServerRestarts() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let client = try RedisClient(url: server.url())
        let states = client.stateChanges()

        try await whileRunning(client) {
            try await awaitState(.connected, in: states)
            #expect(client.isConnected)
            #expect(try await client.execute("SET", "k", "before") == .simpleString("OK"))

            server.kill()
            try await awaitState(.disconnected, in: states)
            #expect(!client.isConnected)

            // While the server is down, commands fail at once: they never wait for a reconnect (the
            // server stays down through the loop, so a command that waited would end at the 5 s command
            // timeout; the bound is well under it, and far above a loaded machine's scheduling).
            let clock = ContinuousClock()
            for _ in 0..<3 {
                let started = clock.now
                let error = await #expect(throws: RedisError.self) { try await client.execute("GET", "k") }
                #expect(error?.code == .unavailable)
                #expect(clock.now - started < .seconds(2), "no wait for a reconnect or a timeout")
            }

            try await server.start()
            try await awaitState(.connected, in: states)
            // A fresh server without persistence: the key is gone, and commands work again.
            #expect(try await client.execute("GET", "k") == .bulkString(nil))
            #expect(try await client.execute("SET", "k", "after") == .simpleString("OK"))
            #expect(try await client.execute("GET", "k").string == "after")
        }
    }

    @Test func reconnectsAfterACommandTimeout() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let configuration = try RedisConnectionConfiguration(url: server.url(), commandTimeout: .milliseconds(500))
        let client = RedisClient(configuration: configuration)
        let states = client.stateChanges()

        try await whileRunning(client) {
            try await awaitState(.connected, in: states)
            server.suspend()
            let error = await #expect(throws: RedisError.self) { try await client.execute("GET", "k") }
            #expect(error?.code == .timeout)
            try await awaitState(.disconnected, in: states)
            server.resume()
            try await awaitState(.connected, in: states)
            // Commands work again. A loaded run can stall either process past the short timeout once more:
            // that fails with a timeout too, and the client reconnects by itself.
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                do {
                    #expect(try await client.execute("PING") == .simpleString("PONG"))
                    break
                } catch let error as RedisError where error.code == .timeout && ContinuousClock.now < deadline {
                    try await awaitState(.connected, in: states)
                }
            }
        }
    }

    @Test func stateStreamStartsWithTheCurrentStateAndEndsDisconnected() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let client = try RedisClient(url: server.url())
        let states = client.stateChanges()
        try await whileRunning(client) {
            try await awaitState(.connected, in: states)
            var iterator = client.stateChanges().makeAsyncIterator()
            #expect(await iterator.next() == .connected)
        }
        #expect(!client.isConnected)
        // The stream saw `disconnected`, then ended with run().
        var seen: [RedisConnectionState] = []
        for await state in states { seen.append(state) }
        #expect(seen.last == .disconnected)
        var after = client.stateChanges().makeAsyncIterator()
        #expect(await after.next() == .disconnected)
        #expect(await after.next() == nil)
        let error = await #expect(throws: RedisError.self) { try await client.execute("PING") }
        #expect(error?.code == .unavailable)
    }
}
