import Logging
import SQLiteNIO

extension SQLiteCallRecordStore {
    /// Makes a store for a `--database` URL of the `sqlite:` scheme (PROTOCOL.md §7).
    ///
    /// Accepted forms (scheme case-insensitive):
    /// - `sqlite::memory:`: a private in-memory database;
    /// - `sqlite:PATH`: e.g. `sqlite:data/calls.sqlite` (relative) or `sqlite:/var/lib/switchboard/calls.sqlite`;
    /// - `sqlite://PATH`: the same, so `sqlite:///var/lib/…` is absolute and `sqlite://calls.sqlite` relative.
    ///
    /// Nothing is opened yet (see ``init(path:threadPool:eventLoopGroup:logger:)``).
    /// - Throws: ``CallRecordStoreError`` with code `invalidURL` for any other scheme, an empty path,
    ///   or a query string (`?…`, not supported).
    package static func open(
        url: String,
        threadPool: NIOThreadPool = .singleton,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.storage.sqlite")
    ) throws -> SQLiteCallRecordStore {
        SQLiteCallRecordStore(
            path: try path(fromURL: url),
            threadPool: threadPool,
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
    }

    /// The file path (or `":memory:"`) a `sqlite:` URL names; see ``open(url:threadPool:eventLoopGroup:logger:)``.
    package static func path(fromURL url: String) throws -> String {
        let scheme = "sqlite:"
        guard url.count > scheme.count, url.prefix(scheme.count).lowercased() == scheme else {
            throw CallRecordStoreError(.sqlite, .invalidURL, "expected sqlite:PATH or sqlite::memory:, got \"\(url)\"")
        }
        var path = url.dropFirst(scheme.count)
        if path == ":memory:" { return ":memory:" }
        if path.hasPrefix("//") { path = path.dropFirst(2) }
        guard !path.isEmpty else {
            throw CallRecordStoreError(.sqlite, .invalidURL, "no path in \"\(url)\"")
        }
        guard !path.contains("?") else {
            throw CallRecordStoreError(.sqlite, .invalidURL, "query parameters are not supported in \"\(url)\"")
        }
        return String(path)
    }
}
