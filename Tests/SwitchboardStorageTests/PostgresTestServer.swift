import Logging
import PostgresNIO
import SwitchboardBasics
import Testing

@testable import SwitchboardStorage

/// How the tests of a suite marked ``Trait/postgresServer`` reach its server: 127.0.0.1:``port`` with
/// ``password``, or the Unix socket in ``socketDirectory`` without one.
struct PostgresTestServer: Sendable {
    /// The server of the running suite; set by ``PostgresServerTrait``.
    @TaskLocal static var current: PostgresTestServer?

    let port: Int
    let socketDirectory: String
    let password: String
    let user = "postgres"
    let logger = Logger(label: "switchboard.tests.postgres")

    /// The server of the running suite, or an error saying the suite lacks the trait.
    static func require() throws -> PostgresTestServer {
        try #require(current, "the suite needs the .postgresServer trait")
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE?sslmode=disable`, the password percent-encoded.
    func url(database: String, scheme: String = "postgres") -> String {
        "\(scheme)://\(user):\(PercentEncoding.encode(password))@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// A new, empty database with a unique name, created from `template1`.
    func createDatabase() async throws -> String {
        let name = "switchboard_\(UInt64.random(in: 0...UInt64.max))"
        try await withConnection { connection in
            _ = try await connection.query("CREATE DATABASE \(unescaped: name)", logger: logger).collect()
        }
        return name
    }

    /// Runs `body` with a superuser connection to `database` over TCP, closed afterwards.
    func withConnection<T: Sendable>(
        database: String = "postgres",
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: "127.0.0.1",
                port: port,
                username: user,
                password: password,
                database: database,
                tls: .disable
            ),
            id: 1,
            logger: logger
        )
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs `sql` on `database` and returns the rows.
    @discardableResult
    func query(_ sql: PostgresQuery, database: String) async throws -> [PostgresRow] {
        try await withConnection(database: database) { connection in
            try await connection.query(sql, logger: logger).collect()
        }
    }
}

/// Starts a ``PostgresServerProcess`` once for the suite it marks, makes it ``PostgresTestServer/current``
/// while the suite's tests run, and stops it afterwards. If the server cannot start (PostgreSQL not
/// installed, …) the error fails the suite.
struct PostgresServerTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try await PostgresServerProcess.start()
        do {
            try await PostgresTestServer.$current.withValue(server.endpoint) { try await function() }
        } catch {
            server.stop()
            throw error
        }
        server.stop()
    }
}

extension Trait where Self == PostgresServerTrait {
    /// Runs the suite against a PostgreSQL server of its own (see ``PostgresServerProcess``).
    static var postgresServer: Self { Self() }
}
