import Logging
import SwitchboardCore

/// Opens the call-record store a `--database` URL names (PROTOCOL.md §7): the one place that knows
/// which URL scheme means which store.
package enum CallRecordStores {
    /// The URL forms ``open(url:logger:)`` accepts, as error messages and help texts spell them.
    package static let acceptedForms =
        "sqlite:PATH, sqlite::memory:, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE or postgresql://…"

    /// The store for `url`, not yet connected or migrated (call `migrate()` next):
    /// - `sqlite:…` → ``SQLiteCallRecordStore`` (see ``SQLiteCallRecordStore/open(url:threadPool:eventLoopGroup:logger:)``);
    /// - `postgres://…` or `postgresql://…` → ``PostgresCallRecordStore`` (see ``PostgresDatabaseURL``).
    ///
    /// Schemes are case-insensitive.
    /// - Throws: ``UnsupportedDatabaseURLError`` for any other scheme; the chosen store's error type
    ///   (code `invalidURL`, …) for a URL of its scheme that it cannot use.
    package static func open(url: String, logger: Logger) throws -> any CallRecordStore {
        if url.lowercased().hasPrefix("sqlite:") {
            return try SQLiteCallRecordStore.open(url: url, logger: logger)
        }
        if PostgresDatabaseURL.hasPostgresScheme(url) {
            return try PostgresCallRecordStore.open(url: url, logger: logger)
        }
        throw UnsupportedDatabaseURLError(url: url)
    }
}
