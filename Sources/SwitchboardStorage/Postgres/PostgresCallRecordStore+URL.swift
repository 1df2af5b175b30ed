import Logging
import PostgresNIO

extension PostgresCallRecordStore {
    /// Makes a store for a `--database` URL of the `postgres://` or `postgresql://` scheme (PROTOCOL.md §7).
    ///
    /// Nothing is opened yet (see ``init(url:maximumConnections:eventLoopGroup:logger:)``); the accepted
    /// forms are those of ``PostgresDatabaseURL``.
    /// - Throws: ``CallRecordStoreError`` with code `invalidURL` or `tlsNotSupported`.
    package static func open(
        url: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.storage.postgres")
    ) throws -> PostgresCallRecordStore {
        PostgresCallRecordStore(url: try PostgresDatabaseURL(parsing: url), eventLoopGroup: eventLoopGroup, logger: logger)
    }
}
