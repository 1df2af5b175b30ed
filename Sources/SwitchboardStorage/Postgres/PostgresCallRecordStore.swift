import Logging
import PostgresNIO
import ServiceLifecycle
import SwitchboardCore

/// Call records in a PostgreSQL database: the store a cluster's nodes share.
///
/// Built on PostgresNIO's `PostgresClient` (a connection pool); nothing blocks an event loop. Times are
/// `timestamptz`, converted from and to the model's unix milliseconds with integers only.
///
/// ## Lifecycle
/// `init` does no I/O and starts no task. The store is a `Service`: ``run()`` runs the pool
/// (`PostgresClient.run()`), and the records are read and written through it, so run the store in the
/// application's `ServiceGroup` *ahead of* whatever writes records. The group stops its services in
/// reverse order, so the writers drain their queues before the pool closes. Operations wait until
/// ``run()`` has begun.
///
/// ``migrate()`` (call it once, first; it does not need ``run()``) migrates the schema on a connection
/// of its own, so that a server that cannot be reached, or a login that is refused, fails start-up at
/// once with the server's reason rather than after the pool's retries. ``run()`` returns on graceful
/// shutdown, on cancellation, or when ``shutdown()`` has stopped the pool. ``shutdown()`` waits for
/// operations in flight, then stops the pool and waits until its connections are closed; it is
/// idempotent, and later calls throw ``CallRecordStoreError/Code-swift.struct/storeShutDown``.
package actor PostgresCallRecordStore: CallRecordStore, Service {
    /// Where the database is (``PostgresDatabaseURL/description`` hides the password).
    package nonisolated let url: PostgresDatabaseURL

    private let client: PostgresClient
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    /// Where the pool is in its life: ``run()`` moves it from `idle` to `running` to `stopped`.
    private enum Pool {
        /// ``run()`` has not begun; the operations in `waiters` wait for it.
        case idle(waiters: [CheckedContinuation<Void, Never>])
        /// ``run()`` runs the pool until `stop` finishes (``shutdown()``), graceful shutdown or cancellation;
        /// `finished` are resumed once it has returned.
        case running(stop: AsyncStream<Never>.Continuation, finished: [CheckedContinuation<Void, Never>])
        /// The pool has stopped or never will run.
        case stopped
    }
    private var pool = Pool.idle(waiters: [])
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
    package init(
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

    // MARK: CallRecordStore

    /// Creates `call_records`, its indexes and `schema_version`, or applies the migrations the database lacks.
    ///
    /// Idempotent, and safe when several nodes start together against one database (see
    /// ``PostgresSchema/migrate(_:logger:)``). Concurrent calls on one store share one run, and other
    /// operations wait for a run in progress.
    /// - Throws: ``CallRecordStoreError`` with code `connectionFailed` (the server's reason in the
    ///   message), `schemaTooNew`, or `databaseError`.
    package func migrate() async throws {
        if let running = migration { return try await running.value }
        let run = Task { try await self.runMigrations() }
        migration = run
        defer { migration = nil }
        try await run.value
    }

    /// Inserts the record or, when a row with its `callId` exists, replaces every column of that row
    /// except `id` and `created_at` (the first snapshot's creation time is kept).
    package func save(_ record: CallRecord) async throws {
        let upsert = try record.postgresUpsert()
        _ = try await withClient("saving call \(record.callId)") { [logger] client in
            try await client.query(upsert, logger: logger).collect()
        }
    }

    /// The record with `callId`, if any.
    package func record(callId: String) async throws -> CallRecord? {
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
    package func records(involving user: String, limit: Int) async throws -> [CallRecord] {
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
    package func shutdown() async throws {
        guard !isShutDown else { return }
        isShutDown = true
        if case .idle(let waiters) = pool {
            pool = .stopped  // never run, and now it never will: the operations waiting for it give up
            for waiter in waiters { waiter.resume() }
        }
        if inFlight > 0 {
            await withCheckedContinuation { drained.append($0) }
        }
        if case .running(let stop, let finished) = pool {
            stop.finish()
            await withCheckedContinuation { pool = .running(stop: stop, finished: finished + [$0]) }
        }
    }

    // MARK: Service

    /// Runs the pool until graceful shutdown, cancellation or ``shutdown()``, whichever comes first;
    /// returns at once if it ran before or the store was shut down.
    ///
    /// Run it in the application's `ServiceGroup`, ahead of the services that write records, and not in a
    /// detached task: the pool then obeys the group's graceful shutdown, which reaches it only after
    /// those services have finished.
    package func run() async {
        guard case .idle(let waiters) = pool else { return }
        let (stopped, stop) = AsyncStream<Never>.makeStream()
        pool = .running(stop: stop, finished: [])
        for waiter in waiters { waiter.resume() }
        let client = self.client
        await withTaskGroup(of: Void.self) { group in
            // PostgresClient.run() returns on graceful shutdown or cancellation, closing every connection.
            group.addTask { await client.run() }
            group.addTask { for await _ in stopped {} }
            _ = await group.next()
            group.cancelAll()
        }
        if case .running(_, let finished) = pool {
            for waiter in finished { waiter.resume() }
        }
        pool = .stopped
    }

    // MARK: Running

    /// Runs `body` with the pool, counting it as in flight from the start so ``shutdown()`` never closes
    /// the pool under it; waits for a migration in progress and for ``run()`` to have begun. Errors from
    /// PostgresNIO are wrapped in ``CallRecordStoreError`` (`databaseError`), their text prefixed with `what`.
    func withClient<T: Sendable>(_ what: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
        try await tracked(waitingForMigration: true) {
            if case .idle = pool {
                await withCheckedContinuation { continuation in
                    if case .idle(let waiters) = pool {
                        pool = .idle(waiters: waiters + [continuation])
                    } else {
                        continuation.resume()
                    }
                }
            }
            guard !isStopped else {  // shut down before it ever ran, or its pool already closed
                throw CallRecordStoreError(.postgres, .storeShutDown, "the call-record store at \(url) was shut down")
            }
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

    private var isStopped: Bool {
        if case .stopped = pool { true } else { false }
    }

    /// Migrates on a connection of its own (closed afterwards), so that connection errors come back at once.
    private func runMigrations() async throws {
        try await tracked(waitingForMigration: false) {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(
                    on: eventLoopGroup.any(),
                    configuration: url.connectionConfiguration,
                    id: 0,
                    logger: logger
                )
            } catch {
                throw CallRecordStoreError.wrappingPostgres(
                    error,
                    as: .connectionFailed,
                    "could not connect to PostgreSQL at \(url)"
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
