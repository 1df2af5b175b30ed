import Logging
import PostgresNIO
import SwitchboardCore

/// Call records in a PostgreSQL database: the store a cluster's nodes share.
///
/// Built on PostgresNIO's `PostgresClient` (a connection pool); nothing blocks an event loop. Times are
/// `timestamptz`, converted from and to the model's unix milliseconds with integers only.
///
/// ## Lifecycle
/// `init` does no I/O and starts no task. ``migrate()`` (call it once, first) starts the pool's
/// background work (`PostgresClient.run()`) in a task this store owns, then migrates the schema on a
/// connection of its own, so that a server that cannot be reached, or a login that is refused, fails
/// start-up at once with the server's reason rather than after the pool's retries. Any other method also
/// starts the pool if ``migrate()`` was skipped. ``shutdown()`` waits for operations in flight, then
/// cancels that task, which closes the pool's connections; it is idempotent, and later calls throw
/// ``CallRecordStoreError/Code-swift.struct/storeShutDown``. A store dropped without
/// ``shutdown()`` cancels the task from `deinit`.
public actor PostgresCallRecordStore: CallRecordStore {
    /// Where the database is (``PostgresDatabaseURL/description`` hides the password).
    public nonisolated let url: PostgresDatabaseURL

    private let client: PostgresClient
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    /// Runs `client.run()` from the first use until ``shutdown()``.
    private var clientRun: Task<Void, Never>?
    /// Completes once ``clientRun`` has begun, that is, is about to call `client.run()`.
    private var clientStarted: Task<Void, Never>?
    private var migration: Task<Void, any Error>?
    private var isShutDown = false
    private var inFlight = 0
    private var drained: [CheckedContinuation<Void, Never>] = []

    /// Creates a store for the database `url` describes. Connects to nothing yet.
    /// - Parameters:
    ///   - url: The server, login and database.
    ///   - maximumConnections: The most connections the pool opens at once (PostgreSQL's default
    ///     `max_connections` is 100, shared by every node).
    ///   - eventLoopGroup: Runs the connections. The singleton suits the server.
    ///   - logger: Receives migration messages, and the pool's own (failed connection attempts at `info`).
    public init(
        url: PostgresDatabaseURL,
        maximumConnections: Int = 20,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.storage.postgres")
    ) {
        precondition(maximumConnections >= 1, "maximumConnections must be at least 1")
        self.url = url
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        var configuration = url.clientConfiguration
        configuration.options.maximumConnections = maximumConnections
        client = PostgresClient(configuration: configuration, eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
    }

    deinit {
        clientRun?.cancel()
    }

    // MARK: CallRecordStore

    /// Creates `call_records`, its indexes and `schema_version`, or applies the migrations the database lacks.
    ///
    /// Idempotent, and safe when several nodes start together against one database (see
    /// ``PostgresSchema/migrate(_:logger:)``). Concurrent calls on one store share one run, and other
    /// operations wait for a run in progress.
    /// - Throws: ``CallRecordStoreError`` with code `connectionFailed` (the server's reason in the
    ///   message), `schemaTooNew`, or `databaseError`.
    public func migrate() async throws {
        if let running = migration { return try await running.value }
        let run = Task {
            await self.startClientIfNeeded()
            try await self.runMigrations()
        }
        migration = run
        defer { migration = nil }
        try await run.value
    }

    /// Inserts the record or, when a row with its `callId` exists, replaces every column of that row
    /// except `id` and `created_at` (the first snapshot's creation time is kept).
    public func save(_ record: CallRecord) async throws {
        let upsert = try record.postgresUpsert()
        _ = try await withClient("saving call \(record.callId)") { [logger] client in
            try await client.query(upsert, logger: logger).collect()
        }
    }

    /// The record with `callId`, if any.
    public func record(callId: String) async throws -> CallRecord? {
        let rows = try await withClient("reading call \(callId)") { [logger] client in
            try await client.query(
                "SELECT \(unescaped: CallRecord.postgresColumns) FROM call_records WHERE call_id = \(callId)",
                logger: logger
            ).collect()
        }
        return try rows.first.map(CallRecord.init(postgresRow:))
    }

    /// Up to `limit` records where `user` is caller or callee, newest `created_at` first (ties: last inserted
    /// first). A `limit` of zero or less returns nothing.
    public func records(involving user: String, limit: Int) async throws -> [CallRecord] {
        guard limit > 0 else { return [] }
        let rows = try await withClient("listing the calls of \(user)") { [logger] client in
            try await client.query(
                """
                SELECT \(unescaped: CallRecord.postgresColumns) FROM call_records
                WHERE caller_id = \(user) OR callee_id = \(user)
                ORDER BY created_at DESC, id DESC
                LIMIT \(Int64(limit))
                """,
                logger: logger
            ).collect()
        }
        return try rows.map(CallRecord.init(postgresRow:))
    }

    /// Waits for operations in flight, then stops the pool and waits until its connections are closed.
    public func shutdown() async throws {
        guard !isShutDown else { return }
        isShutDown = true
        if inFlight > 0 {
            await withCheckedContinuation { drained.append($0) }
        }
        guard let run = clientRun else { return }  // never used: nothing runs
        clientRun = nil
        run.cancel()  // PostgresClient.run() treats cancellation as "close every connection and return"
        await run.value
    }

    // MARK: Running

    /// Runs `body` with the pool, counting it as in flight from the start so ``shutdown()`` never closes
    /// the pool under it; waits for a migration in progress. Errors from PostgresNIO are wrapped in
    /// ``CallRecordStoreError`` (`databaseError`), their text prefixed with `what`.
    func withClient<T: Sendable>(_ what: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
        try await tracked(waitingForMigration: true) {
            await startClientIfNeeded()
            do {
                return try await body(client)
            } catch {
                throw CallRecordStoreError.wrappingPostgres(error, as: .databaseError, what)
            }
        }
    }

    /// Runs `body` counted as in flight; throws `storeShutDown` once ``shutdown()`` has begun.
    private func tracked<T: Sendable>(waitingForMigration: Bool, _ body: () async throws -> T) async throws -> T {
        guard !isShutDown else {
            throw CallRecordStoreError(.postgres, .storeShutDown, "the call-record store at \(url) was shut down")
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
        return try await body()
    }

    /// Starts `client.run()` in a task of its own, once, and returns when that task has begun.
    ///
    /// The task is detached on purpose: the pool lives as long as the store, not as long as whichever
    /// task first used it. A plain `Task` would inherit that task's task-locals, among them
    /// ServiceLifecycle's graceful-shutdown trigger (which `PostgresClient.run()` obeys), and the pool
    /// would close at the first SIGTERM while the server's `CallRecordWriter` still drains its queue.
    ///
    /// Waiting for the task to begin keeps the first lease from racing `run()`: the pool would still
    /// serve it, but would log a warning that `run()` was not called.
    private func startClientIfNeeded() async {
        if clientRun == nil, !isShutDown {
            let client = self.client
            let (started, signal) = AsyncStream<Never>.makeStream()
            clientRun = Task.detached {
                signal.finish()
                await client.run()
            }
            clientStarted = Task {
                for await _ in started {}
            }
        }
        await clientStarted?.value
    }

    /// Migrates on a connection of its own (closed afterwards), so that connection errors come back at once.
    private func runMigrations() async throws {
        try await tracked(waitingForMigration: false) {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(
                    on: eventLoopGroup.any(), configuration: url.connectionConfiguration, id: 0, logger: logger
                )
            } catch {
                throw CallRecordStoreError.wrappingPostgres(
                    error, as: .connectionFailed, "could not connect to PostgreSQL at \(url)"
                )
            }
            do {
                try await PostgresSchema.migrate(connection, logger: logger)
            } catch {
                try? await connection.close()
                throw CallRecordStoreError.wrappingPostgres(error, as: .databaseError, "migrating \(url)")
            }
            try await connection.close()
        }
    }
}
