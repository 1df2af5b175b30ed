import Foundation
import Logging
import SwitchboardCore
import Testing

@testable import SwitchboardStorage

@Suite("postgres:// URLs")
struct PostgresDatabaseURLTests {
    typealias DB = PostgresDatabaseURL

    @Test(arguments: [
        (
            "postgres://alice:secret@db.example:5433/calls?sslmode=disable",
            DB(endpoint: .tcp(host: "db.example", port: 5433), username: "alice", password: "secret", database: "calls")
        ),
        (
            "postgresql://alice@localhost/calls",
            DB(endpoint: .tcp(host: "localhost", port: 5432), username: "alice", database: "calls")
        ),
        (
            "POSTGRES://alice@127.0.0.1",
            DB(endpoint: .tcp(host: "127.0.0.1", port: 5432), username: "alice")
        ),
        (
            "postgres://alice@127.0.0.1/",
            DB(endpoint: .tcp(host: "127.0.0.1", port: 5432), username: "alice")
        ),
        (
            "postgres://alice:@[::1]:6000/calls",
            DB(endpoint: .tcp(host: "::1", port: 6000), username: "alice", database: "calls")
        ),
        (
            "postgres://al%40ice:p%40ss%3Aw%2Frd%25%C3%A9%20@h/my%20db",
            DB(endpoint: .tcp(host: "h", port: 5432), username: "al@ice", password: "p@ss:w/rd%é ", database: "my db")
        ),
        (
            "postgres://alice:p@ss@h/calls",  // an unencoded @ in the password: the last @ ends the user info
            DB(endpoint: .tcp(host: "h", port: 5432), username: "alice", password: "p@ss", database: "calls")
        ),
        (
            "postgres://alice@/calls?host=/var/run/postgresql",
            DB(endpoint: .unixSocket(directory: "/var/run/postgresql", port: 5432), username: "alice", database: "calls")
        ),
        (
            "postgres://alice@:5444/calls?host=%2Ftmp%2Fpg%20dir&sslmode=prefer",
            DB(endpoint: .unixSocket(directory: "/tmp/pg dir", port: 5444), username: "alice", database: "calls")
        ),
        (
            "postgres://alice@%2Fvar%2Frun%2Fpostgresql/calls",
            DB(endpoint: .unixSocket(directory: "/var/run/postgresql", port: 5432), username: "alice", database: "calls")
        ),
        (
            "postgres://alice@ignored/calls?host=db2",
            DB(endpoint: .tcp(host: "db2", port: 5432), username: "alice", database: "calls")
        ),
        (
            "postgres://alice@h/calls?application_name=node%20a&connect_timeout=3&sslmode=allow",
            DB(
                endpoint: .tcp(host: "h", port: 5432),
                username: "alice",
                database: "calls",
                applicationName: "node a",
                connectTimeout: .seconds(3)
            )
        ),
    ])
    func valid(_ text: String, _ expected: PostgresDatabaseURL) throws {
        #expect(try PostgresDatabaseURL(parsing: text) == expected)
        #expect(PostgresDatabaseURL.hasPostgresScheme(text))
    }

    @Test(arguments: [
        ("mysql://alice@h/db", "expected postgres://"),
        ("postgres:/alice@h/db", "expected postgres://"),
        ("postgres://h/db", "no user name"),
        ("postgres://:secret@h/db", "user name is empty"),
        ("postgres://alice@/db", "no host"),
        ("postgres://alice@h:0/db", "port"),
        ("postgres://alice@h:65536/db", "port"),
        ("postgres://alice@h:54a/db", "port"),
        ("postgres://alice@h:/db", "port"),
        ("postgres://alice@[::1/db", "unclosed ["),
        ("postgres://alice@[::1]x/db", "after ]"),
        ("postgres://alice@h1,h2/db", "several hosts"),
        ("postgres://alice@h/db/extra", "contains /"),
        ("postgres://alice@h/db#frag", "fragment"),
        ("postgres://al%ice@h/db", "malformed percent escape in the user name"),
        ("postgres://alice:%zz@h/db", "malformed percent escape in the password"),
        ("postgres://alice@h/%ff", "not UTF-8"),
        ("postgres://alice@h/db?sslmode=sometimes", "unknown sslmode"),
        ("postgres://alice@h/db?sslcert=x", "unknown parameter \"sslcert\""),
        ("postgres://alice@h/db?sslmode", "has no value"),
        ("postgres://alice@h/db?sslmode=disable&sslmode=disable", "given twice"),
        ("postgres://alice@h/db?connect_timeout=0", "connect_timeout"),
        ("postgres://alice@h/db?connect_timeout=+5", "connect_timeout"),
        ("postgres://alice@h/db?host=", "host is empty"),
    ])
    func invalid(_ text: String, _ problem: String) {
        let error = #expect(throws: CallRecordStoreError.self) { try PostgresDatabaseURL(parsing: text) }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains(problem) == true, "\(error?.message ?? "no error")")
    }

    @Test(arguments: ["require", "verify-ca", "verify-full"])
    func tlsModesAreRefusedClearly(_ mode: String) {
        let error = #expect(throws: CallRecordStoreError.self) {
            try PostgresDatabaseURL(parsing: "postgres://alice@h/db?sslmode=\(mode)")
        }
        #expect(error?.code == .tlsNotSupported)
        #expect(error?.message.contains("sslmode=\(mode)") == true)
        #expect(error?.message.contains("sslmode=disable") == true, "says what to use instead")
    }

    @Test func errorsAndDescriptionsNeverShowThePassword() throws {
        let url = try PostgresDatabaseURL(parsing: "postgres://alice:hunter2@db:5433/calls?application_name=a%26b")
        #expect(url.description == "postgres://alice:***@db:5433/calls?application_name=a%26b")
        #expect(
            try PostgresDatabaseURL(parsing: "postgres://a%40b@[::1]/c%3Fd?host=/run/pg%20s").description
                == "postgres://a%40b@/c%3Fd?host=/run/pg%20s"
        )
        for text in ["postgres://alice:hunter2@h:99999/db", "postgres://alice:hunter2@h/db?x=1", "postgres://alice:hunter2@/db"] {
            let error = #expect(throws: CallRecordStoreError.self) { try PostgresDatabaseURL(parsing: text) }
            #expect(error?.description.contains("hunter2") == false)
        }
    }

    @Test func descriptionParsesBackToTheSameURL() throws {
        for text in [
            "postgres://alice:secret@db.example:5433/calls",
            "postgres://al%40ice@[::1]/my%20db?application_name=x&connect_timeout=4",
            "postgres://alice@:5444/calls?host=/tmp/pg",
        ] {
            var url = try PostgresDatabaseURL(parsing: text)
            let reparsed = try PostgresDatabaseURL(parsing: url.description.replacingOccurrences(of: ":***@", with: ":secret@"))
            if url.password != nil { url.password = "secret" }
            #expect(reparsed == url, "\(text)")
        }
    }

    @Test func unixSocketPathFollowsLibpq() {
        #expect(
            DB(endpoint: .unixSocket(directory: "/run/pg", port: 5433), username: "a").unixSocketPath == "/run/pg/.s.PGSQL.5433"
        )
        #expect(
            DB(endpoint: .unixSocket(directory: "/run/pg/", port: 5432), username: "a").unixSocketPath == "/run/pg/.s.PGSQL.5432"
        )
        #expect(DB(endpoint: .tcp(host: "h", port: 5432), username: "a").unixSocketPath == nil)
    }
}

@Suite("CallRecordStores.open")
struct CallRecordStoresTests {
    let logger = Logger(label: "test")

    @Test(arguments: ["sqlite::memory:", "sqlite:calls.sqlite", "SQLITE:/tmp/x.db"])
    func sqliteURLsOpenSQLite(_ url: String) async throws {
        let store = try CallRecordStores.open(url: url, logger: logger)
        #expect(store is SQLiteCallRecordStore)
        try await store.shutdown()  // never used: opens nothing
    }

    @Test(arguments: ["postgres://a@h/db", "postgresql://a@h/db", "PostgreSQL://a@h/db?sslmode=disable"])
    func postgresURLsOpenPostgres(_ url: String) async throws {
        let store = try CallRecordStores.open(url: url, logger: logger)
        #expect(store is PostgresCallRecordStore)
        try await store.shutdown()  // never used: connects to nothing
    }

    @Test(arguments: [
        ("mysql://root:hunter2@h/db", "unsupported database URL scheme \"mysql:\""),
        ("postgre://root:hunter2@h/db", "unsupported database URL scheme \"postgre:\""),
        ("/var/lib/calls.sqlite", "has no scheme"),
        ("", "has no scheme"),
    ])
    func otherSchemesNameTheAcceptedForms(_ url: String, _ problem: String) {
        let error = #expect(throws: UnsupportedDatabaseURLError.self) { try CallRecordStores.open(url: url, logger: logger) }
        let text = error?.description ?? ""
        #expect(text.contains(problem), "\(text)")
        #expect(text.contains("sqlite:PATH") && text.contains("postgres://USER"), "\(text)")
        #expect(!text.contains("hunter2"))
    }

    @Test func urlErrorsOfAKnownSchemeComeFromItsStore() {
        #expect(throws: CallRecordStoreError.self) { try CallRecordStores.open(url: "sqlite:", logger: logger) }
        let error = #expect(throws: CallRecordStoreError.self) {
            try CallRecordStores.open(url: "postgres://h/db", logger: logger)
        }
        #expect(error?.code == .invalidURL)
    }
}

@Suite("PostgresTimestamp")
struct PostgresTimestampTests {
    @Test(
        arguments: [
            (946_684_800_000, 0),  // PostgreSQL's epoch
            (0, -946_684_800_000_000),
            (1_795_608_000_123, 848_923_200_123_000),
            (-1, -946_684_800_001_000),
            (PostgresTimestamp.minMilliseconds, -211_813_488_000_000_000),
            (PostgresTimestamp.maxMilliseconds, 9_223_371_331_199_999_000),
        ] as [(Int64, Int64)]
    )
    func millisecondsToMicrosecondsAndBack(_ milliseconds: Int64, _ microseconds: Int64) throws {
        #expect(try PostgresTimestamp(milliseconds: milliseconds).microseconds == microseconds)
        #expect(PostgresTimestamp(microseconds: microseconds).milliseconds == milliseconds)
    }

    @Test func subMillisecondsTruncateTowardsThePast() {
        #expect(PostgresTimestamp(microseconds: -946_684_800_000_000 + 1_999).milliseconds == 1)
        #expect(PostgresTimestamp(microseconds: -946_684_800_000_000 - 1).milliseconds == -1)
    }

    @Test(arguments: [Int64.max, Int64.min, 9_223_371_331_200_000_000, -211_813_488_000_000_001])
    func infinityAndOutOfRangeReadAsNil(_ microseconds: Int64) {
        #expect(PostgresTimestamp(microseconds: microseconds).milliseconds == nil)
    }

    @Test(arguments: [Int64.max, Int64.min, PostgresTimestamp.maxMilliseconds + 1, PostgresTimestamp.minMilliseconds - 1])
    func unrepresentableTimesAreRejected(_ milliseconds: Int64) {
        let error = #expect(throws: CallRecordStoreError.self) { try PostgresTimestamp(milliseconds: milliseconds) }
        #expect(error?.code == .timeOutOfRange)
    }
}
