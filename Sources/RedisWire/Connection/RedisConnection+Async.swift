import Logging
import NIOCore
import NIOPosix

extension RedisConnection {
    /// Connects to `configuration.endpoint`; see ``connect(configuration:eventLoop:logger:metrics:)``.
    package static func connect(
        configuration: RedisConnectionConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        logger: Logger = Logger(label: "RedisWire"),
        metrics: RedisMetrics = RedisMetrics()
    ) async throws(RedisError) -> RedisConnection {
        try await RedisError.mapping {
            try await connect(configuration: configuration, eventLoop: eventLoop, logger: logger, metrics: metrics).get()
        }
    }

    /// Closes the connection and waits until it is closed.
    package func close() async {
        try? await close().get()
    }
}

extension RedisError {
    /// Runs `body`, turning a non-`RedisError` failure into ``Code/connectionClosed``.
    @discardableResult
    static func mapping<T>(_ body: () async throws -> T) async throws(RedisError) -> T {
        do {
            return try await body()
        } catch {
            throw RedisError(wrapping: error)
        }
    }

    /// The results of `futures`, in order.
    static func results(of futures: [EventLoopFuture<RESPValue>]) async -> [Result<RESPValue, RedisError>] {
        var results: [Result<RESPValue, RedisError>] = []
        results.reserveCapacity(futures.count)
        for future in futures {
            do throws(RedisError) {
                results.append(.success(try await mapping { try await future.get() }))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}
