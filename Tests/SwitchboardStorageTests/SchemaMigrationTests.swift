import Foundation
import NIOPosix
import PostgresNIO
import SQLiteNIO
import SwitchboardCore
import Testing

@testable import SwitchboardStorage

/// A database written by a build before `connected_time` (schema version 1) is migrated in place: its
/// rows are kept, read with `connected_time` NULL, and new rows carry it (PROTOCOL.md §8).
@Suite("Schema migrations keep existing rows")
struct SchemaMigrationTests {
    /// Two rows as a version-1 build wrote them: an ended call and a missed one.
    static let oldRows = [
        "('old-1', 'alice', 'bob', 1, 3, '2026-01-02T03:04:05.000Z', '2026-01-02T03:05:05.000Z', 60, 'hangup', '2026-01-02T03:04:00.000Z', '2026-01-02T03:05:05.000Z')",
        "('old-2', 'carol', 'alice', 2, 4, NULL, NULL, 0, 'timeout', '2026-01-03T00:00:00.000Z', '2026-01-03T00:01:00.000Z')",
    ]
    static let oldColumns =
        "call_id, caller_id, callee_id, call_type, status, start_time, end_time, duration, end_reason, created_at, updated_at"

    /// What every store must read back after migrating, newest first for alice.
    static func expectOldRowsKept(_ store: any CallRecordStore) async throws {
        let records = try await store.records(involving: "alice", limit: 10)
        #expect(records.map(\.callId) == ["old-2", "old-1"])
        #expect(records.allSatisfy { $0.connectedTime == nil })
        let ended = try #require(records.last)
        #expect(ended.status == .hungUp && ended.duration == 60 && ended.endReason == "hangup")
        #expect(ended.startTime == SQLiteTimestamp.parse("2026-01-02T03:04:05.000Z"))
        var new = ended
        new.callId = "new-1"
        new.connectedTime = ended.startTime.map { $0 + 1_500 }
        try await store.save(new)
        #expect(try await store.record(callId: "new-1") == new)
    }

    @Test func sqliteVersion1FileIsMigrated() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/old.sqlite"
            let old = try await SQLiteConnection.open(
                storage: .file(path: path),
                threadPool: .singleton,
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
            for statement in SQLiteSchema.migrations[0].statements { _ = try await old.query(statement) }
            _ = try await old.query("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            _ = try await old.query("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00.000Z')")
            for row in Self.oldRows {
                _ = try await old.query("INSERT INTO call_records (\(Self.oldColumns)) VALUES \(row)")
            }
            try await old.close()

            let store = SQLiteCallRecordStore(path: path)
            try await store.migrate()
            try await Self.expectOldRowsKept(store)
            let versions = try await store.withConnection { try await $0.query("SELECT version FROM schema_version") }
            #expect(versions.compactMap { $0.column("version")?.integer } == [1, 2])
            try await store.shutdown()
        }
    }

}

@Suite("PostgreSQL schema migrations keep existing rows", .postgresServer)
struct PostgresSchemaMigrationTests {
    @Test func version1DatabaseIsMigrated() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        for statement in PostgresSchema.migrations[0].statements { _ = try await server.query(statement, database: database) }
        _ = try await server.query(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            database: database
        )
        _ = try await server.query("INSERT INTO schema_version (version) VALUES (1)", database: database)
        for row in SchemaMigrationTests.oldRows {
            _ = try await server.query(
                PostgresQuery(unsafeSQL: "INSERT INTO call_records (\(SchemaMigrationTests.oldColumns)) VALUES \(row)"),
                database: database
            )
        }
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        try await SchemaMigrationTests.expectOldRowsKept(store)
        let versions = try await server.query("SELECT version FROM schema_version ORDER BY version", database: database)
            .map { try $0.decode(Int.self) }
        #expect(versions == [1, 2])
        try await store.shutdown()
    }
}
