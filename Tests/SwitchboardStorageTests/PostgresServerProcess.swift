import Foundation
import Logging
import PostgresNIO
import TestPorts

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of its own for a test suite: a fresh cluster (`initdb`) in a temporary directory,
/// listening on 127.0.0.1 on a free port and on a Unix socket in that directory, with `fsync=off`.
///
/// The superuser `postgres` logs in with ``password`` over TCP (SCRAM) and without one over the socket
/// (trust). ``start()`` returns once a real login and `SELECT 1` succeed; ``stop()`` shuts the server
/// down (`pg_ctl stop -m immediate`), waits for it, and deletes the directory.
///
/// PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` OS user
/// (`runuser -u postgres --`), which Debian's `postgresql` package creates. The binaries come from
/// `SWITCHBOARD_TEST_POSTGRES_BIN` or else the newest `/usr/lib/postgresql/N/bin`; if there are none,
/// ``start()`` throws, so the tests fail rather than skip (scripts/test installs `postgresql`).
final class PostgresServerProcess {
    /// What a test needs to reach the server.
    let endpoint: PostgresTestServer

    private let directory: String
    private let binDirectory: String
    private let runAs: [String]
    private var process: Process?

    private init(endpoint: PostgresTestServer, directory: String, binDirectory: String, runAs: [String]) {
        self.endpoint = endpoint
        self.directory = directory
        self.binDirectory = binDirectory
        self.runAs = runAs
    }

    deinit {
        stop()
    }

    /// Makes a cluster, starts the server and waits (at most 60 s) until it accepts a login.
    static func start() async throws -> PostgresServerProcess {
        let binDirectory = try findBinDirectory()
        let runAs = geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-postgres-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let password = "p@ss:w/rd %é"  // needs percent-encoding in a URL: proves the decoding end to end
        let server = PostgresServerProcess(
            endpoint: PostgresTestServer(port: try freePort(), socketDirectory: directory, password: password),
            directory: directory,
            binDirectory: binDirectory,
            runAs: runAs
        )
        do {
            try server.prepareDirectory()
            try await server.initdb()
            try server.launch()
            try await server.waitUntilReady(deadline: .now + .seconds(60))
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    /// Stops the server at once (no checkpoint: the cluster is thrown away), waits until it exited, and
    /// deletes its directory. Idempotent.
    func stop() {
        if let process, process.isRunning {
            let pgCtl = makeProcess(
                binDirectory + "/pg_ctl",
                ["stop", "-D", directory + "/data", "-m", "immediate", "-w", "-t", "30"]
            )
            pgCtl.standardOutput = FileHandle.nullDevice
            pgCtl.standardError = FileHandle.nullDevice
            if (try? pgCtl.run()) != nil { pgCtl.waitUntilExit() }
            if process.isRunning, let pid = postmasterPID() {
                _ = kill(pid, SIGKILL)  // pg_ctl failed: the postmaster cannot outlive the test
            }
            process.waitUntilExit()
        }
        process = nil
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Steps

    private static func findBinDirectory() throws -> String {
        let environment = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_POSTGRES_BIN"]
        var candidates = environment.map { [$0] } ?? []
        if environment == nil {
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
            candidates = versions.compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        }
        for candidate in candidates
        where ["initdb", "postgres", "pg_ctl"].allSatisfy({ FileManager.default.isExecutableFile(atPath: "\(candidate)/\($0)") })
        {
            return candidate
        }
        throw ServerError(
            "PostgreSQL server binaries (initdb, postgres, pg_ctl) not found in "
                + (environment ?? "/usr/lib/postgresql/*/bin")
                + ": install them with `apt-get install postgresql` (scripts/test does)"
        )
    }

    /// The directory and a password file, owned by the user the server runs as.
    private func prepareDirectory() throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
        let passwordFile = directory + "/password"
        guard FileManager.default.createFile(atPath: passwordFile, contents: Data(endpoint.password.utf8)) else {
            throw ServerError("cannot write \(passwordFile)")
        }
        guard !runAs.isEmpty else { return }
        guard let user = getpwnam("postgres") else {
            throw ServerError(
                "running as root, but there is no `postgres` OS user to run the server as (apt-get install postgresql)"
            )
        }
        for path in [directory, passwordFile] where chown(path, user.pointee.pw_uid, user.pointee.pw_gid) != 0 {
            throw ServerError("chown \(path) to postgres failed: errno \(errno)")
        }
    }

    private func initdb() async throws {
        let log = directory + "/initdb.log"
        let status = try await run(
            binDirectory + "/initdb",
            [
                "-D", directory + "/data", "-U", endpoint.user, "--pwfile", directory + "/password",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
            ],
            log: log
        )
        guard status == 0 else { throw ServerError("initdb exited with \(status): \(tail(of: log))") }
    }

    private func launch() throws {
        let process = makeProcess(
            binDirectory + "/postgres",
            [
                "-D", directory + "/data", "-p", "\(endpoint.port)",
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=\(directory)",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "logging_collector=off",
            ]
        )
        let log = try logHandle(directory + "/postgres.log")
        process.standardOutput = log
        process.standardError = log
        defer { try? log.close() }  // the child has its own copy
        try process.run()
        self.process = process
    }

    /// Polls with a real login until one succeeds, the server exits, or `deadline` passes.
    private func waitUntilReady(deadline: ContinuousClock.Instant) async throws {
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            guard let process, process.isRunning else {
                throw ServerError("postgres exited during start-up: \(tail(of: directory + "/postgres.log"))")
            }
            do {
                try await endpoint.withConnection { connection in
                    _ = try await connection.query("SELECT 1", logger: endpoint.logger).collect()
                }
                return
            } catch {
                lastError = error  // refused, or "the database system is starting up"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerError(
            "postgres on port \(endpoint.port) accepted no login in time (last error: \(lastError.map { String(reflecting: $0) } ?? "none")): "
                + tail(of: directory + "/postgres.log")
        )
    }

    // MARK: Helpers

    /// Runs a server command (as `postgres` when root) with output to `log`, and returns its exit status.
    private func run(_ executable: String, _ arguments: [String], log: String) async throws -> Int32 {
        let process = makeProcess(executable, arguments)
        let handle = try logHandle(log)
        process.standardOutput = handle
        process.standardError = handle
        defer { try? handle.close() }  // the child has its own copy
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
    }

    /// A process for `executable` with `arguments`, under `runuser -u postgres --` when root.
    private func makeProcess(_ executable: String, _ arguments: [String]) -> Process {
        let process = Process()
        if let runner = runAs.first {
            process.executableURL = URL(fileURLWithPath: runner)
            process.arguments = Array(runAs.dropFirst()) + [executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        process.standardInput = FileHandle.nullDevice
        return process
    }

    private func logHandle(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw ServerError("cannot create \(path)") }
        return handle
    }

    private func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no \(path))"
        return String(text.suffix(2_000))
    }

    private func postmasterPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
            let first = text.split(separator: "\n").first
        else { return nil }
        return pid_t(first)
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now and no other test server was given.
    static func freePort() throws -> Int {
        try LoopbackPort.free()
    }

    struct ServerError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
