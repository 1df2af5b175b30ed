import Testing

@testable import RedisWire

@Suite("Reconnect backoff")
struct RedisReconnectPolicyTests {
    @Test func backoffDoublesUpToTheCap() {
        let policy = RedisReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .seconds(2), jitter: 0)
        let delays = (0..<8).map { policy.delay(attempt: $0, random: 0) }
        #expect(
            delays.prefix(6) == [
                .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                .milliseconds(1600),
            ]
        )
        #expect(delays[6] == .seconds(2))
        #expect(delays[7] == .seconds(2))
        let jittered = RedisReconnectPolicy(jitter: 0.5).delay(attempt: 0, random: 0.999)
        #expect(jittered > .milliseconds(25) && jittered <= .milliseconds(50))
    }
}
