import Logging
import SQLiteNIO
import SwitchboardCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Call records in an SQLite database file (or in memory): the embedded default store.
///
/// One connection, opened on first use (so `init` does no I/O and starts no task). Every SQLite call
/// runs on the given `NIOThreadPool` through SQLiteNIO's async API, never on an event loop or the
/// cooperative pool. File databases use WAL journal mode and a 5 s busy timeout. Times are stored as
/// ISO-8601 UTC text with milliseconds (`2026-11-25T12:00:00.123Z`).
///
/// Call ``migrate()`` once before anything else and ``shutdown()`` once at the end: shutdown waits for
/// in-flight operations, then closes the connection (SQLiteNIO asserts in debug builds if a connection
/// is dropped unclosed).
package actor SQLiteCallRecordStore: CallRecordStore {
    /// The database file path, or `":memory:"`.
    package nonisolated let path: String

    private let threadPool: NIOThreadPool
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    private var connectionTask: Task<SQLiteConnection, any Error>?
    private var migration: Task<Void, any Error>?
    private var isShutDown = false
    private var inFlight = 0
    private var drained: [CheckedContinuation<Void, Never>] = []

    /// Creates a store for the database at `path` (`":memory:"` for a private in-memory database).
    ///
    /// Nothing is opened until the first call; missing parent directories of `path` are created then.
    /// - Parameters:
    ///   - path: A file path (relative paths resolve against the working directory) or `":memory:"`.
    ///   - threadPool: Runs every SQLite call. The singleton suits the server.
    ///   - eventLoopGroup: Supplies the event loop SQLiteNIO attaches to the connection for its futures.
    ///   - logger: Receives migration and configuration messages.
    package init(
        path: String,
        threadPool: NIOThreadPool = .singleton,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.storage.sqlite")
    ) {
        self.path = path
        self.threadPool = threadPool
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Whether ``path`` names an in-memory database rather than a file.
    package nonisolated var isInMemory: Bool { path == ":memory:" }

    // MARK: CallRecordStore

    /// Creates `call_records` and its indexes, or applies the migrations a file from an older build lacks.
    ///
    /// Idempotent. Concurrent calls share one run, and other operations wait for a run in progress.
    package func migrate() async throws {
        if let running = migration { return try await running.value }
        let run = Task { try await self.runMigrations() }
        migration = run
        defer { migration = nil }
        try await run.value
    }

    /// Inserts the record or, when a row with its `callId` and the same parties exists, replaces every
    /// column of that row except `id`, `created_at` and the parties; a row of other parties is kept as it
    /// is, and so is one whose call the snapshot would take back (ended → accepted → invite).
    package func save(_ record: CallRecord) async throws {
        let binds = try record.sqliteBinds()
        try await withConnection { connection in
            _ = try await connection.query(
                """
                INSERT INTO call_records (\(CallRecord.sqliteColumns))
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                ON CONFLICT (call_id) DO UPDATE SET
                    call_type = excluded.call_type,
                    status = excluded.status,
                    start_time = excluded.start_time,
                    end_time = excluded.end_time,
                    duration = excluded.duration,
                    end_reason = excluded.end_reason,
                    updated_at = excluded.updated_at,
                    connected_time = COALESCE(excluded.connected_time, call_records.connected_time)
                WHERE call_records.caller_id = excluded.caller_id AND call_records.callee_id = excluded.callee_id
                    AND MIN(excluded.status, 2) >= MIN(call_records.status, 2)
                """,
                binds
            )
        }
    }

    /// The record with `callId`, if any.
    package func record(callId: String) async throws -> CallRecord? {
        let rows = try await withConnection { connection in
            try await connection.query(
                "SELECT \(CallRecord.sqliteColumns) FROM call_records WHERE call_id = ?1",
                [.text(callId)]
            )
        }
        return try rows.first.map(CallRecord.init(sqliteRow:))
    }

    /// Up to `limit` records where `user` is caller or callee, newest `created_at` first (ties: last inserted
    /// first). A `limit` of zero or less returns nothing.
    package func records(involving user: String, limit: Int) async throws -> [CallRecord] {
        guard limit > 0 else { return [] }
        let rows = try await withConnection { connection in
            try await connection.query(
                """
                SELECT \(CallRecord.sqliteColumns) FROM call_records
                WHERE caller_id = ?1 OR callee_id = ?1
                ORDER BY created_at DESC, id DESC
                LIMIT ?2
                """,
                [.text(user), .integer(limit)]
            )
        }
        return try rows.map(CallRecord.init(sqliteRow:))
    }

    /// Waits for operations in flight, then closes the connection. Idempotent; later calls to other
    /// methods throw ``CallRecordStoreError/Code/storeShutDown``.
    package func shutdown() async throws {
        guard !isShutDown else { return }
        isShutDown = true
        if inFlight > 0 {
            await withCheckedContinuation { drained.append($0) }
        }
        guard let opening = connectionTask else { return }
        connectionTask = nil
        guard let connection = try? await opening.value else { return }  // never opened: nothing to close
        try await connection.close()
    }

    // MARK: Connection

    /// Runs `body` with the open connection, counting it as in flight from the start so ``shutdown()``
    /// never closes the connection under it. Waits for a migration in progress unless it is that migration.
    func withConnection<T: Sendable>(
        waitingForMigration: Bool = true,
        _ body: (SQLiteConnection) async throws -> T
    ) async throws -> T {
        guard !isShutDown else {
            throw CallRecordStoreError(.sqlite, .storeShutDown, "the call-record store at \(path) was shut down")
        }
        inFlight += 1
        defer {
            inFlight -= 1
            if inFlight == 0 {
                for waiter in drained { waiter.resume() }
                drained.removeAll()
            }
        }
        if waitingForMigration, let running = migration { _ = try? await running.value }
        return try await body(try await connection())
    }

    private func runMigrations() async throws {
        try await withConnection(waitingForMigration: false) { [logger] connection in
            try await SQLiteSchema.migrate(connection, logger: logger)
        }
    }

    /// The connection, opening it on first use; a failed open is retried by the next call.
    private func connection() async throws -> SQLiteConnection {
        if let opening = connectionTask { return try await opening.value }
        let opening = Task { [path, isInMemory, threadPool, eventLoopGroup, logger] in
            try await Self.open(
                path: path,
                isInMemory: isInMemory,
                threadPool: threadPool,
                eventLoop: eventLoopGroup.any(),
                logger: logger
            )
        }
        connectionTask = opening
        do {
            return try await opening.value
        } catch {
            if connectionTask == opening { connectionTask = nil }
            throw error
        }
    }

    private static func open(
        path: String,
        isInMemory: Bool,
        threadPool: NIOThreadPool,
        eventLoop: any EventLoop,
        logger: Logger
    ) async throws -> SQLiteConnection {
        if !isInMemory, let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let directory = String(path[..<slash])
            try await threadPool.runIfActive {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        }
        let connection = try await SQLiteConnection.open(
            storage: isInMemory ? .memory : .file(path: path),
            threadPool: threadPool,
            logger: logger,
            on: eventLoop
        )
        do {
            try await SQLiteSchema.configure(connection, isMemory: isInMemory, logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        return connection
    }
}
