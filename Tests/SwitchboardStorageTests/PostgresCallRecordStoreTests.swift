import Foundation
import PostgresNIO
import SwitchboardCore
import Testing

@testable import SwitchboardStorage

/// A store on `database` of the suite's server, with a small pool (many tests run at once), running.
func makePostgresStore(
    _ server: PostgresTestServer,
    database: String,
    scheme: String = "postgres"
) throws -> PostgresCallRecordStore {
    running(
        PostgresCallRecordStore(
            url: try PostgresDatabaseURL(parsing: server.url(database: database, scheme: scheme)),
            maximumConnections: 4
        )
    )
}

/// `store`, its pool run (what the server's `ServiceGroup` does) until the test's `shutdown()` stops it.
func running(_ store: PostgresCallRecordStore) -> PostgresCallRecordStore {
    Task { await store.run() }
    return store
}

@Suite("PostgresCallRecordStore", .postgresServer)
struct PostgresCallRecordStoreTests {
    @Test("conformance", arguments: CallRecordStoreConformance.Check.allCases)
    func conformance(_ check: CallRecordStoreConformance.Check) async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        try await CallRecordStoreConformance.run(check) { try makePostgresStore(server, database: database) }
    }

    @Test func schemaHasTheProtocolsColumnsTypesAndIndexes() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let factory: CallRecordStoreConformance.Factory = { try makePostgresStore(server, database: database) }
        try await CallRecordStoreConformance.withMigratedStore(factory, { _ in })

        let columns = try await server.query(
            """
            SELECT column_name, data_type, is_nullable FROM information_schema.columns
            WHERE table_name = 'call_records' ORDER BY ordinal_position
            """,
            database: database
        ).map { try $0.decode((String, String, String).self) }
        #expect(
            columns.map { "\($0.0) \($0.1) \($0.2)" } == [
                "id bigint NO",
                "call_id text NO",
                "caller_id text NO",
                "callee_id text NO",
                "call_type smallint NO",
                "status smallint NO",
                "start_time timestamp with time zone YES",
                "end_time timestamp with time zone YES",
                "duration bigint NO",
                "end_reason text YES",
                "created_at timestamp with time zone NO",
                "updated_at timestamp with time zone NO",
                "connected_time timestamp with time zone YES",
            ]
        )

        let indexes = try await server.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'call_records' ORDER BY indexname",
            database: database
        ).map { try $0.decode((String, String).self) }
        #expect(
            indexes.map(\.0) == [
                "call_records_call_id_key", "call_records_pkey",
                "idx_call_records_callee_id", "idx_call_records_caller_id", "idx_call_records_created_at",
            ]
        )
        #expect(indexes.first { $0.0 == "call_records_call_id_key" }?.1.contains("UNIQUE INDEX") == true)

        let versions = try await server.query(
            "SELECT version, applied_at IS NOT NULL AND applied_at <= now() FROM schema_version",
            database: database
        ).map { try $0.decode((Int, Bool).self) }
        #expect(versions.map(\.0) == Array(1...PostgresSchema.latestVersion), "each version once")
        #expect(versions.allSatisfy { $0.1 }, "applied_at is set, and not in the future")
    }

    @Test func storesTimesAsTimestamptzOfTheSameInstant() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let ids = CallRecordStoreConformance.IDs()
        let record = CallRecordStoreConformance.fullRecord(ids)
        let factory: CallRecordStoreConformance.Factory = { try makePostgresStore(server, database: database) }
        try await CallRecordStoreConformance.withMigratedStore(factory, { try await $0.save(record) })
        let text = try await server.query(
            """
            SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
            FROM call_records WHERE call_id = \(record.callId)
            """,
            database: database
        ).first?.decode(String.self)
        #expect(text == "2026-11-25T12:00:00.123Z")
    }

    @Test("several stores migrating one fresh database at once all succeed", arguments: [2, 6])
    func concurrentMigrations(stores count: Int) async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let stores = try (0..<count).map { _ in try makePostgresStore(server, database: database) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            try await group.waitForAll()
        }
        let versions = try await server.query("SELECT version FROM schema_version", database: database)
            .map { try $0.decode(Int.self) }
        #expect(versions.sorted() == Array(1...PostgresSchema.latestVersion), "each migration is applied exactly once")

        // Every store works, and they all see one table.
        let ids = CallRecordStoreConformance.IDs()
        for (index, store) in stores.enumerated() {
            try await store.save(
                CallRecordStoreConformance.invite(ids, "m\(index)", createdAt: CallRecordStoreConformance.base + Int64(index))
            )
        }
        for store in stores {
            #expect(try await store.records(involving: ids.user("alice"), limit: 100).count == count)
            try await store.shutdown()
        }
    }

    @Test func migrationWaitsForTheAdvisoryLockHeldByAnotherNode() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        let logger = server.logger
        try await server.withConnection(database: database) { holder in
            // Another node is migrating: it holds the lock in an open transaction.
            _ = try await holder.query("BEGIN", logger: logger).collect()
            _ = try await holder.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLockKey))", logger: logger)
                .collect()

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.migrate() }

                // Poll (bounded) until the store's migration waits for that lock.
                let deadline = ContinuousClock.now + .seconds(20)
                var waiting = 0
                while waiting == 0, ContinuousClock.now < deadline {
                    waiting =
                        try await server.query(
                            """
                            SELECT count(*)::bigint FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                            """,
                            database: database
                        ).first?.decode(Int.self) ?? 0
                    if waiting == 0 { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(waiting == 1, "the migration asks for the advisory lock")
                let table = try await server.query("SELECT to_regclass('call_records')::text", database: database)
                    .first?.decode(String?.self)
                #expect(table == nil, "nothing is created while another node holds the lock")

                _ = try await holder.query("COMMIT", logger: logger).collect()
                try await group.waitForAll()
            }
        }
        let ids = CallRecordStoreConformance.IDs()
        try await store.save(CallRecordStoreConformance.fullRecord(ids))
        #expect(try await store.record(callId: ids.call("full")) == CallRecordStoreConformance.fullRecord(ids))
        try await store.shutdown()
    }

    @Test func refusesASchemaFromANewerBuild() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        try await server.query("INSERT INTO schema_version (version) VALUES (99)", database: database)
        let error = await #expect(throws: CallRecordStoreError.self) { try await store.migrate() }
        #expect(error?.code == .schemaTooNew)
        #expect(error?.message.contains("99") == true)
        try await store.shutdown()
    }

    @Test func corruptRowsThrowInsteadOfGuessing() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        try await server.query(
            """
            INSERT INTO call_records (call_id, caller_id, callee_id, call_type, status, created_at, updated_at)
            VALUES ('bad-status', 'a', 'b', 1, 9, now(), now()),
                   ('bad-type', 'a', 'b', 7, 0, now(), now()),
                   ('infinite', 'a', 'b', 1, 0, 'infinity', now()),
                   ('manual', 'a', 'b', 2, 1, '2026-01-01 00:00:00.0015+00', '1969-12-31 23:59:59.9995+00')
            """,
            database: database
        )
        for (callId, column) in [("bad-status", "status"), ("bad-type", "call_type"), ("infinite", "created_at")] {
            let error = await #expect(throws: CallRecordStoreError.self) { try await store.record(callId: callId) }
            #expect(error?.code == .corruptRow)
            #expect(error?.message.contains("call_records.\(column)") == true, "\(error?.message ?? "")")
        }
        // Sub-millisecond digits written by hand are truncated towards the past, also before 1970.
        let manual = try #require(try await store.record(callId: "manual"))
        #expect(manual.createdAt == 1_767_225_600_001)
        #expect(manual.updatedAt == -1)
        try await store.shutdown()
    }

    @Test func timesAtTheEdgesOfTimestamptz() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        for time in [PostgresTimestamp.minMilliseconds, PostgresTimestamp.maxMilliseconds] {
            let record = CallRecord(
                callId: "edge\(time)",
                callerId: "a",
                calleeId: "b",
                callType: .audio,
                status: .invite,
                startTime: time,
                endTime: time,
                createdAt: time,
                updatedAt: time
            )
            try await store.save(record)
            #expect(try await store.record(callId: record.callId) == record)
        }
        for time in [Int64.max, Int64.min, PostgresTimestamp.maxMilliseconds + 1, PostgresTimestamp.minMilliseconds - 1] {
            let record = CallRecord(
                callId: "out\(time)",
                callerId: "x",
                calleeId: "y",
                callType: .audio,
                status: .invite,
                endTime: time,
                createdAt: 0,
                updatedAt: 0
            )
            let error = await #expect(throws: CallRecordStoreError.self) { try await store.save(record) }
            #expect(error?.code == .timeOutOfRange)
        }
        #expect(try await store.records(involving: "x", limit: 10).isEmpty)
        try await store.shutdown()
    }

    @Test func serverErrorsCarryTheServersMessageAndSQLState() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        try await server.query("DROP TABLE call_records", database: database)
        let error = await #expect(throws: CallRecordStoreError.self) {
            try await store.record(callId: "gone")
        }
        #expect(error?.code == .databaseError)
        #expect(error?.sqlState == "42P01")
        #expect(error?.message.contains("call_records") == true, "\(error?.message ?? "")")
        try await store.shutdown()
    }

    @Test func refusedLoginsFailMigrateWithTheServersReason() async throws {
        let server = try PostgresTestServer.require()
        let wrongPassword = PostgresCallRecordStore(
            url: PostgresDatabaseURL(
                endpoint: .tcp(host: "127.0.0.1", port: server.port),
                username: "postgres",
                password: "wrong",
                database: "postgres"
            )
        )
        let passwordError = await #expect(throws: CallRecordStoreError.self) { try await wrongPassword.migrate() }
        #expect(passwordError?.code == .connectionFailed)
        #expect(passwordError?.sqlState == "28P01", "invalid_password")
        #expect(passwordError?.description.contains("wrong") == false, "the password never appears")
        try await wrongPassword.shutdown()

        let noDatabase = try makePostgresStore(server, database: "no_such_database")
        let databaseError = await #expect(throws: CallRecordStoreError.self) { try await noDatabase.migrate() }
        #expect(databaseError?.code == .connectionFailed)
        #expect(databaseError?.sqlState == "3D000", "invalid_catalog_name")
        #expect(databaseError?.message.contains("no_such_database") == true)
        try await noDatabase.shutdown()
    }

    @Test func unreachableServerFailsMigrateAtOnce() async throws {
        let port = try PostgresServerProcess.freePort()  // nothing listens there
        let store = PostgresCallRecordStore(
            url: PostgresDatabaseURL(endpoint: .tcp(host: "127.0.0.1", port: port), username: "postgres", database: "postgres")
        )
        let started = ContinuousClock.now
        let error = await #expect(throws: CallRecordStoreError.self) { try await store.migrate() }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(error?.message ?? "")")
        #expect(ContinuousClock.now - started < .seconds(5), "not after the pool's retries")
        try await store.shutdown()
    }

    @Test func unixSocketURLAndApplicationName() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let name = "switchboard-test-\(UInt32.random(in: 0...UInt32.max))"
        // No password: the socket uses trust authentication, so only the socket could have let this in.
        let url = "postgresql://postgres@:\(server.port)/\(database)?host=\(server.socketDirectory)&application_name=\(name)"
        let store = running(try PostgresCallRecordStore.open(url: url))
        #expect(store.url.unixSocketPath == "\(server.socketDirectory)/.s.PGSQL.\(server.port)")
        try await store.migrate()
        let ids = CallRecordStoreConformance.IDs()
        try await store.save(CallRecordStoreConformance.fullRecord(ids))
        let sessions = try await server.query(
            "SELECT count(*)::bigint FROM pg_stat_activity WHERE application_name = \(name) AND client_port = -1",
            database: database
        ).first?.decode(Int.self)
        #expect((sessions ?? 0) >= 1, "the pool's idle connection, over the Unix socket (client_port -1)")
        #expect(try await store.record(callId: ids.call("full")) == CallRecordStoreConformance.fullRecord(ids))
        try await store.shutdown()
    }

    @Test func factoryOpensPostgresForBothSchemes() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let ids = CallRecordStoreConformance.IDs()
        for scheme in ["postgres", "PostgreSQL"] {
            let store = try CallRecordStores.open(url: server.url(database: database, scheme: scheme), logger: server.logger)
            #expect(store is PostgresCallRecordStore)
            _ = (store as? PostgresCallRecordStore).map(running)
            try await store.migrate()
            try await store.save(CallRecordStoreConformance.invite(ids, scheme))
            try await store.shutdown()
        }
        let store = try makePostgresStore(server, database: database)
        #expect(try await store.records(involving: ids.user("alice"), limit: 10).count == 2)
        try await store.shutdown()
    }

    @Test func shutdownIsIdempotentAndFinal() async throws {
        let server = try PostgresTestServer.require()
        let never = try makePostgresStore(server, database: "postgres")
        try await never.shutdown()  // never used: nothing to stop

        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        _ = try await store.record(callId: "x")
        try await store.shutdown()
        try await store.shutdown()
        for operation in [{ _ = try await store.record(callId: "x") }, { try await store.migrate() }]
            as [@Sendable () async throws -> Void]
        {
            let error = await #expect(throws: CallRecordStoreError.self) { try await operation() }
            #expect(error?.code == .storeShutDown)
        }
        // The server notices closed connections a moment later: poll (bounded) for none left.
        let deadline = ContinuousClock.now + .seconds(10)
        var open = -1
        while open != 0, ContinuousClock.now < deadline {
            open =
                try await server.query(
                    "SELECT count(*)::bigint FROM pg_stat_activity WHERE datname = \(database)",
                    database: "postgres"
                ).first?.decode(Int.self) ?? -1
            if open != 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(open == 0, "shutdown closed every pool connection")
    }

    @Test func shutdownWaitsForOperationsInFlight() async throws {
        let server = try PostgresTestServer.require()
        let database = try await server.createDatabase()
        let store = try makePostgresStore(server, database: database)
        try await store.migrate()
        let saved = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                group.addTask {
                    do {
                        try await store.save(
                            CallRecord(
                                callId: "c\(index)",
                                callerId: "a",
                                calleeId: "b",
                                callType: .audio,
                                status: .invite,
                                createdAt: 0,
                                updatedAt: 0
                            )
                        )
                        return true
                    } catch let error as CallRecordStoreError where error.code == .storeShutDown {
                        return false  // started after shutdown: refused cleanly
                    }
                }
            }
            group.addTask {
                try await store.shutdown()
                return false
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        let rows = try await server.query("SELECT count(*)::bigint FROM call_records", database: database)
            .first?.decode(Int.self)
        #expect(rows == saved, "every save that was not refused completed")
    }
}
