import Logging
import SQLiteNIO

/// The schema of the SQLite call-record database and its migrations.
///
/// Applied migrations are recorded in `schema_version` (one row per version, with the time applied).
/// To change the schema, append a ``Migration`` with the next version; never edit a released one.
enum SQLiteSchema {
    /// One step of the schema history.
    struct Migration: Sendable {
        /// Strictly increasing from 1.
        let version: Int
        /// Statements run in order, in one transaction with the `schema_version` bookkeeping.
        let statements: [String]
    }

    /// Every migration, oldest first.
    static let migrations: [Migration] = [
        Migration(
            version: 1,
            statements: [
                """
                CREATE TABLE IF NOT EXISTS call_records (
                    id          INTEGER PRIMARY KEY AUTOINCREMENT,
                    call_id     TEXT    NOT NULL UNIQUE,
                    caller_id   TEXT    NOT NULL,
                    callee_id   TEXT    NOT NULL,
                    call_type   INTEGER NOT NULL,
                    status      INTEGER NOT NULL,
                    start_time  TEXT,
                    end_time    TEXT,
                    duration    INTEGER NOT NULL DEFAULT 0,
                    end_reason  TEXT,
                    created_at  TEXT    NOT NULL,
                    updated_at  TEXT    NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS idx_call_records_caller_id ON call_records (caller_id)",
                "CREATE INDEX IF NOT EXISTS idx_call_records_callee_id ON call_records (callee_id)",
                "CREATE INDEX IF NOT EXISTS idx_call_records_created_at ON call_records (created_at)",
            ]
        ),
        // v1.1 (PROTOCOL.md §8): when a call's media first connected; existing rows keep NULL.
        Migration(version: 2, statements: ["ALTER TABLE call_records ADD COLUMN connected_time TEXT"]),
    ]

    /// The version a fully migrated database reports.
    static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Connection settings, applied on every open (they are not all persistent).
    ///
    /// `busy_timeout` replaces SQLiteNIO's default busy handler, which retries forever and would pin a
    /// thread-pool thread while another process holds the write lock.
    static func configure(_ connection: SQLiteConnection, isMemory: Bool, logger: Logger) async throws {
        _ = try await connection.query("PRAGMA busy_timeout = 5000")
        let mode = try await connection.query("PRAGMA journal_mode = WAL").first?.column("journal_mode")?.string
        if !isMemory, mode?.lowercased() != "wal" {
            logger.warning("SQLite did not switch to WAL journal mode", metadata: ["journal_mode": "\(mode ?? "?")"])
        }
        // Safe with WAL: a power loss may drop the last commits but never corrupts the database.
        _ = try await connection.query("PRAGMA synchronous = NORMAL")
    }

    /// Brings the database to ``latestVersion``; a no-op when it is already there.
    ///
    /// Holds the write lock (`BEGIN IMMEDIATE`) while it reads and advances the version, so two processes
    /// starting on the same file do not both migrate.
    static func migrate(_ connection: SQLiteConnection, logger: Logger) async throws {
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_version (
                version     INTEGER PRIMARY KEY,
                applied_at  TEXT    NOT NULL
            )
            """
        )
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            let rows = try await connection.query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
            let current = rows.first?.column("version")?.integer ?? 0
            guard current <= latestVersion else {
                throw CallRecordStoreError(
                    .sqlite,
                    .schemaTooNew,
                    "database schema version \(current) is newer than this build's \(latestVersion)"
                )
            }
            for migration in migrations where migration.version > current {
                for statement in migration.statements {
                    _ = try await connection.query(statement)
                }
                _ = try await connection.query(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    [.integer(migration.version)]
                )
                logger.info("Migrated call-record schema", metadata: ["version": "\(migration.version)"])
            }
            _ = try await connection.query("COMMIT")
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }
}
