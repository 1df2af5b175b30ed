import Foundation
import SwitchboardCore
import Testing

@testable import SwitchboardStorage

/// Where a test's SQLite database lives.
enum SQLiteBacking: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, file
    var testDescription: String { rawValue }
}

/// A fresh directory under the system temporary directory, removed when the test is done.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("switchboard-storage-\(UInt64.random(in: 0...UInt64.max))").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

@Suite("SQLiteCallRecordStore")
struct SQLiteCallRecordStoreTests {
    @Test("conformance", arguments: SQLiteBacking.allCases, CallRecordStoreConformance.Check.allCases)
    func conformance(_ backing: SQLiteBacking, _ check: CallRecordStoreConformance.Check) async throws {
        switch backing {
        case .memory:
            try await CallRecordStoreConformance.run(check) { SQLiteCallRecordStore(path: ":memory:") }
        case .file:
            try await withTemporaryDirectory { directory in
                try await CallRecordStoreConformance.run(check) {
                    SQLiteCallRecordStore(path: directory + "/calls.sqlite")
                }
            }
        }
    }

    @Test func fileSurvivesCloseAndReopenAndCreatesParentDirectories() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/nested/deeper/calls.sqlite"
            let ids = CallRecordStoreConformance.IDs()
            let full = CallRecordStoreConformance.fullRecord(ids)
            let invite = CallRecordStoreConformance.invite(ids, "second", createdAt: full.createdAt + 1)

            let first = SQLiteCallRecordStore(path: path)
            try await first.migrate()
            try await first.save(full)
            try await first.save(invite)
            #expect(FileManager.default.fileExists(atPath: directory + "/nested/deeper/calls.sqlite-wal"))
            try await first.shutdown()

            let second = try SQLiteCallRecordStore.open(url: "sqlite:" + path)
            try await second.migrate()
            #expect(try await second.record(callId: full.callId) == full)
            #expect(try await second.records(involving: ids.user("alice"), limit: 10) == [invite, full])
            let versions = try await second.withConnection { try await $0.query("SELECT version FROM schema_version") }
            let applied = versions.compactMap { $0.column("version")?.integer }
            #expect(applied == Array(1...SQLiteSchema.latestVersion), "reopening does not re-migrate")
            try await second.shutdown()
        }
    }

    @Test func fileUsesWALJournalMode() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/calls.sqlite"
            let store = SQLiteCallRecordStore(path: path)
            try await store.migrate()
            let mode = try await store.withConnection { try await $0.query("PRAGMA journal_mode") }
            #expect(mode.first?.column("journal_mode")?.string == "wal")
            let timeout = try await store.withConnection { try await $0.query("PRAGMA busy_timeout") }
            #expect(timeout.first?.column("timeout")?.integer == 5000)
            try await store.shutdown()
            // WAL is persistent: the header's read/write format versions (bytes 18 and 19) are 2.
            let header = try #require(FileManager.default.contents(atPath: path)).prefix(20)
            #expect(Array(header.suffix(2)) == [2, 2])
        }
    }

    @Test func storesTimesAsISO8601TextWithMilliseconds() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        let ids = CallRecordStoreConformance.IDs()
        let record = CallRecordStoreConformance.fullRecord(ids)
        try await store.save(record)
        let rows = try await store.withConnection {
            try await $0.query(
                "SELECT created_at, start_time, end_time, updated_at, typeof(created_at) AS t, id FROM call_records WHERE call_id = ?1",
                [.text(record.callId)]
            )
        }
        let row = try #require(rows.first)
        #expect(row.column("created_at")?.string == "2026-11-25T12:00:00.123Z")
        #expect(row.column("start_time")?.string == "2026-11-25T12:00:04.444Z")
        #expect(row.column("end_time")?.string == "2026-11-25T12:01:05.555Z")
        #expect(row.column("updated_at")?.string == "2026-11-25T12:01:05.556Z")
        #expect(row.column("t")?.string == "text")
        #expect(row.column("id")?.integer == 1)
        try await store.shutdown()
    }

    @Test func upsertKeepsRowID() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        let ids = CallRecordStoreConformance.IDs()
        var record = CallRecordStoreConformance.invite(ids, "a")
        try await store.save(CallRecordStoreConformance.invite(ids, "other"))
        try await store.save(record)
        record.status = .accepted
        try await store.save(record)
        let rows = try await store.withConnection {
            try await $0.query("SELECT id FROM call_records WHERE call_id = ?1", [.text(record.callId)])
        }
        #expect(rows.map { $0.column("id")?.integer } == [2])
        try await store.shutdown()
    }

    @Test func valuesAreBoundNotInterpolated() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        let nasty = "x'); DROP TABLE call_records; --"
        let record = CallRecord(
            callId: nasty,
            callerId: "o'brien",
            calleeId: "\"bob\"",
            callType: .audio,
            status: .invite,
            endReason: "?1 ?2 %s",
            createdAt: 0,
            updatedAt: 0
        )
        try await store.save(record)
        #expect(try await store.record(callId: nasty) == record)
        #expect(try await store.records(involving: "o'brien", limit: 5) == [record])
        try await store.shutdown()
    }

    @Test func schemaVersionIsRecordedOnce() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        try await store.migrate()
        async let a: Void = store.migrate()
        async let b: Void = store.migrate()
        _ = try await (a, b)
        let rows = try await store.withConnection { try await $0.query("SELECT version, applied_at FROM schema_version") }
        let versions = rows.map { $0.column("version")?.integer }
        #expect(versions == (1...SQLiteSchema.latestVersion).map(Optional.some), "each version once")
        #expect(rows.first?.column("applied_at")?.string.flatMap(SQLiteTimestamp.parse) != nil)
        let indexes = try await store.withConnection {
            try await $0.query(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'call_records' AND sql IS NOT NULL ORDER BY name"
            )
        }
        #expect(
            indexes.compactMap { $0.column("name")?.string } == [
                "idx_call_records_callee_id", "idx_call_records_caller_id", "idx_call_records_created_at",
            ]
        )
        try await store.shutdown()
    }

    @Test func refusesASchemaFromANewerBuild() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        _ = try await store.withConnection {
            try await $0.query("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)", [.integer(99), .text("x")])
        }
        let error = await #expect(throws: CallRecordStoreError.self) { try await store.migrate() }
        #expect(error?.code == .schemaTooNew)
        try await store.shutdown()
    }

    @Test func corruptRowsThrowInsteadOfGuessing() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        _ = try await store.withConnection {
            try await $0.query(
                """
                INSERT INTO call_records (call_id, caller_id, callee_id, call_type, status, created_at, updated_at)
                VALUES ('bad-status', 'a', 'b', 1, 9, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),
                       ('bad-time', 'a', 'b', 1, 0, 'yesterday', '2026-01-01T00:00:00.000Z'),
                       ('manual', 'a', 'b', 2, 1, '2026-01-01 00:00:01', '2026-01-01T00:00:01.5')
                """
            )
        }
        for callId in ["bad-status", "bad-time"] {
            let error = await #expect(throws: CallRecordStoreError.self) { try await store.record(callId: callId) }
            #expect(error?.code == .corruptRow)
        }
        // Text written by sqlite3's own date functions still reads.
        let manual = try #require(try await store.record(callId: "manual"))
        #expect(manual.createdAt == 1_767_225_601_000)
        #expect(manual.updatedAt == 1_767_225_601_500)
        try await store.shutdown()
    }

    @Test func timesOutsideFourDigitYearsAreRejected() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        for time in [Int64.max, Int64.min, SQLiteTimestamp.maxMilliseconds + 1, SQLiteTimestamp.minMilliseconds - 1] {
            let record = CallRecord(
                callId: "c\(time)",
                callerId: "a",
                calleeId: "b",
                callType: .audio,
                status: .invite,
                createdAt: time,
                updatedAt: 0
            )
            let error = await #expect(throws: CallRecordStoreError.self) { try await store.save(record) }
            #expect(error?.code == .timeOutOfRange)
        }
        #expect(try await store.records(involving: "a", limit: 10).isEmpty)
        try await store.shutdown()
    }

    @Test func negativeLimitReturnsNothing() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        try await store.save(
            CallRecord(callId: "c", callerId: "a", calleeId: "b", callType: .audio, status: .invite, createdAt: 0, updatedAt: 0)
        )
        #expect(try await store.records(involving: "a", limit: -1).isEmpty)
        try await store.shutdown()
    }

    @Test func shutdownIsIdempotentAndFinal() async throws {
        let never = SQLiteCallRecordStore(path: ":memory:")
        try await never.shutdown()  // never opened: nothing to close

        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        try await store.shutdown()
        try await store.shutdown()
        let error = await #expect(throws: CallRecordStoreError.self) { try await store.record(callId: "x") }
        #expect(error?.code == .storeShutDown)
    }

    @Test func shutdownWaitsForOperationsInFlight() async throws {
        let store = SQLiteCallRecordStore(path: ":memory:")
        try await store.migrate()
        try await withThrowingTaskGroup(of: Void.self) { group in
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
                    } catch let error as CallRecordStoreError where error.code == .storeShutDown {
                        // Started after shutdown: refused cleanly.
                    }
                }
            }
            group.addTask { try await store.shutdown() }
            try await group.waitForAll()
        }
    }

    @Test func failedOpenIsReportedAndShutdownStillWorks() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory + "/not-a-directory"
            #expect(FileManager.default.createFile(atPath: file, contents: Data()))
            let store = SQLiteCallRecordStore(path: file + "/calls.sqlite")
            await #expect(throws: (any Error).self) { try await store.migrate() }
            await #expect(throws: (any Error).self) { try await store.migrate() }
            try await store.shutdown()
        }
    }
}

@Suite("sqlite: URLs")
struct SQLiteURLTests {
    @Test(arguments: [
        ("sqlite::memory:", ":memory:"),
        ("sqlite:calls.sqlite", "calls.sqlite"),
        ("sqlite:data/calls.sqlite", "data/calls.sqlite"),
        ("sqlite:/var/lib/switchboard/calls.sqlite", "/var/lib/switchboard/calls.sqlite"),
        ("sqlite:///var/lib/switchboard/calls.sqlite", "/var/lib/switchboard/calls.sqlite"),
        ("sqlite://calls.sqlite", "calls.sqlite"),
        ("SQLite:/tmp/x.db", "/tmp/x.db"),
    ])
    func valid(_ url: String, _ path: String) throws {
        #expect(try SQLiteCallRecordStore.path(fromURL: url) == path)
        let store = try SQLiteCallRecordStore.open(url: url)
        #expect(store.path == path)
        #expect(store.isInMemory == (path == ":memory:"))
    }

    @Test(arguments: [
        "mysql://x", "postgres://user@localhost/db", "", "sqlite", "sqlite:", "sqlite://", "sqlite3:/tmp/x.db",
        "/tmp/x.db", "file:/tmp/x.db", "sqlite:/tmp/x.db?mode=ro",
    ])
    func invalid(_ url: String) {
        let error = #expect(throws: CallRecordStoreError.self) { try SQLiteCallRecordStore.open(url: url) }
        #expect(error?.code == .invalidURL)
    }
}

@Suite("SQLiteTimestamp")
struct SQLiteTimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1_795_608_000_123, "2026-11-25T12:00:00.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        (SQLiteTimestamp.minMilliseconds, "0000-01-01T00:00:00.000Z"),
        (SQLiteTimestamp.maxMilliseconds, "9999-12-31T23:59:59.999Z"),
    ])
    func formatsAndParses(_ milliseconds: Int64, _ text: String) throws {
        #expect(try SQLiteTimestamp.format(milliseconds) == text)
        #expect(SQLiteTimestamp.parse(text) == milliseconds)
    }

    @Test func agreesWithFoundationAndSortsAsText() throws {
        var generator = SystemRandomNumberGenerator()
        var pairs: [(Int64, String)] = []
        for _ in 0..<5_000 {
            let ms = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)  // 1900…2100
            let text = try SQLiteTimestamp.format(ms)
            #expect(SQLiteTimestamp.parse(text) == ms)
            let seconds = Double(ms.quotientAndRemainder(dividingBy: 1_000).quotient) - (ms % 1_000 < 0 ? 1 : 0)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            #expect(text.prefix(19) + "Z" == formatter.string(from: Date(timeIntervalSince1970: seconds)))
            pairs.append((ms, text))
        }
        #expect(pairs.sorted { $0.0 < $1.0 }.map(\.1) == pairs.map(\.1).sorted())
    }

    @Test(arguments: [
        ("2026-11-25 12:00:00", Int64(1_795_608_000_000)),
        ("2026-11-25T12:00:00Z", 1_795_608_000_000),
        ("2026-11-25T12:00:00.1Z", 1_795_608_000_100),
        ("2026-11-25T12:00:00.12", 1_795_608_000_120),
        ("2026-11-25T12:00:00.123456789Z", 1_795_608_000_123),
    ])
    func parsesLenientForms(_ text: String, _ milliseconds: Int64) {
        #expect(SQLiteTimestamp.parse(text) == milliseconds)
    }

    @Test(arguments: [
        "", "yesterday", "2026-11-25", "2026-13-01T00:00:00.000Z", "2026-02-29T00:00:00.000Z",
        "2026-11-25T24:00:00.000Z", "2026-11-25T12:60:00.000Z", "2026-11-25T12:00:60.000Z",
        "2026-11-25T12:00:00.Z", "2026-11-25T12:00:00.000+01:00", "2026-11-25T12:00:00.000ZZ", "20261125T120000Z",
        "-001-01-01T00:00:00.000Z", "2026-1-25T12:00:00.000Z",
    ])
    func rejectsMalformedText(_ text: String) {
        #expect(SQLiteTimestamp.parse(text) == nil)
    }
}
