import NIOCore
import NIOConcurrencyHelpers
import RedisWire
import Testing

@Suite struct TmpBench {
    @Test func throughput() async throws {
        let server = try await RedisServerProcess.started()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(url: server.url())
        let clock = ContinuousClock()
        let payload = RESPArgument([UInt8](repeating: 65, count: 200))
        for round in 0..<2 {
            let n = 200_000
            var start = clock.now
            // off-loop, in windows of 5000
            var done = 0
            while done < n {
                let futures = (0..<5000).map { _ in connection.send(["PUBLISH", "ch", payload]) }
                for f in futures { _ = try await f.get() }
                done += 5000
            }
            let offLoop = clock.now - start
            start = clock.now
            done = 0
            while done < n {
                _ = try await connection.eventLoop.flatSubmit {
                    EventLoopFuture.andAllSucceed((0..<5000).map { _ in connection.send(["PUBLISH", "ch", payload]) }, on: connection.eventLoop)
                }.get()
                done += 5000
            }
            let onLoop = clock.now - start
            print("round \(round): off-loop \(Double(n) / (Double(offLoop.components.attoseconds) * 1e-18 + Double(offLoop.components.seconds))) publish/s, on-loop \(Double(n) / (Double(onLoop.components.attoseconds) * 1e-18 + Double(onLoop.components.seconds))) publish/s")
        }
        await connection.close()
    }
}
