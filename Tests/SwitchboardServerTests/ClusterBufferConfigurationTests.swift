import SwitchboardRedis
import Testing

@testable import SwitchboardServer

/// `redis.retry_*`, `redis.replay_*`, `redis.reorder_max_bytes` (PROTOCOL.md §9).
@Suite struct ClusterBufferConfigurationTests {
    private let secret = ["SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef"]

    @Test func theDefaultsAreTheLibrarysAndStayWithin64MiBPerNode() throws {
        let limits = try SwitchboardConfiguration.load(file: nil, environment: secret, overrides: [:]).redis.bufferLimits
        #expect(limits == ClusterBufferLimits.standard)
        #expect(limits.retryMaxBytes + limits.replayMaxBytes <= 64 << 20, "what a node keeps per destination node")
        #expect(limits.retryMaxAge == .seconds(2) && limits.replayMaxAge == .seconds(10))
    }

    @Test func theKeysAreRead() throws {
        let environment = secret.merging([
            "SWITCHBOARD_REDIS_RETRY_MAX_BYTES": "8388608", "SWITCHBOARD_REDIS_RETRY_MAX_MESSAGES": "100",
            "SWITCHBOARD_REDIS_RETRY_MAX_AGE": "500ms", "SWITCHBOARD_REDIS_REPLAY_MAX_BYTES": "0",
            "SWITCHBOARD_REDIS_REPLAY_MAX_MESSAGES": "7", "SWITCHBOARD_REDIS_REPLAY_MAX_AGE": "3s",
            "SWITCHBOARD_REDIS_REORDER_MAX_BYTES": "1048576",
        ]) { $1 }
        let limits = try SwitchboardConfiguration.load(file: nil, environment: environment, overrides: [:]).redis.bufferLimits
        #expect(
            limits
                == ClusterBufferLimits(
                    retryMaxBytes: 8 << 20,
                    retryMaxMessages: 100,
                    retryMaxAge: .milliseconds(500),
                    replayMaxBytes: 0,
                    replayMaxMessages: 7,
                    replayMaxAge: .seconds(3),
                    reorderMaxBytes: 1 << 20
                )
        )
    }

    /// `redis.publish_window`: 500us by default, 0 turns it off, beyond 100ms is refused.
    @Test func thePublishWindowIsReadAndBounded() throws {
        let load = { (value: String?) throws -> Duration in
            let overrides = value.map { ["redis.publish_window": $0] } ?? [:]
            return try SwitchboardConfiguration.load(file: nil, environment: self.secret, overrides: overrides).redis
                .publishWindow
        }
        #expect(try load(nil) == .microseconds(500))
        #expect(try load("0") == .zero)
        #expect(try load("2ms") == .milliseconds(2))
        #expect(try load("100ms") == .milliseconds(100))
        let error = try #require(throws: ConfigurationError.self) { try load("101ms") }
        #expect(error.key == "redis.publish_window")
        #expect(error.description.contains("at most 100ms"))
        #expect(throws: ConfigurationError.self) { try load("1.5ms") }
    }

    @Test func aRetryBudgetBelowTheLargestMessageIsRefused() throws {
        let environment = secret.merging(["SWITCHBOARD_WEBSOCKET_MAX_MESSAGE_BYTES": "4194304"]) { $1 }
        #expect(throws: Never.self) {
            try SwitchboardConfiguration.load(
                file: nil,
                environment: environment,
                overrides: ["redis.retry_max_bytes": "4259840"]
            )
        }
        let error = try #require(throws: ConfigurationError.self) {
            try SwitchboardConfiguration.load(
                file: nil,
                environment: environment,
                overrides: ["redis.retry_max_bytes": "4194304"]
            )
        }
        #expect(error.key == "redis.retry_max_bytes")
        #expect(error.description.contains("websocket.max_message_bytes"))
        #expect(throws: ConfigurationError.self) {
            try SwitchboardConfiguration.load(file: nil, environment: secret, overrides: ["redis.retry_max_bytes": "1000"])
        }
    }
}
