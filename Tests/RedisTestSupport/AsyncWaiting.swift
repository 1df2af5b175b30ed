import NIOCore
import RedisWire
import ServiceLifecycle
import Testing

/// Thrown when something awaited did not happen in time.
package struct TimedOut: Error, CustomStringConvertible {
    package var what: String
    package var description: String { "timed out waiting for \(what)" }

    package init(what: String) {
        self.what = what
    }
}

/// `body`'s result, or ``TimedOut`` after `timeout`.
package func withTimeout<T: Sendable>(
    _ timeout: Duration = .seconds(10),
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next(), let value = result else { throw TimedOut(what: what) }
        return value
    }
}

/// Waits until `states` yields `state`.
package func awaitState(
    _ state: RedisConnectionState,
    in states: AsyncStream<RedisConnectionState>,
    timeout: Duration = .seconds(10)
) async throws {
    try await withTimeout(timeout, "state \(state)") {
        for await next in states where next == state { return }
        throw TimedOut(what: "state \(state) (stream ended)")
    }
}

/// Runs `service` while `body` runs, then cancels it and waits until it returned.
package func whileRunning<T: Sendable>(
    _ service: some Service,
    _ body: () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await service.run() }
        defer { group.cancelAll() }
        return try await body()
    }
}

extension RedisConnection {
    /// A connection to `url` (a plain admin connection for tests).
    package static func connect(url: String, commandTimeout: Duration? = .seconds(5)) async throws -> RedisConnection {
        try await connect(configuration: RedisConnectionConfiguration(url: url, commandTimeout: commandTimeout))
    }
}
