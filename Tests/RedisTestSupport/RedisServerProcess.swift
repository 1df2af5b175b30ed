import Foundation
import TestPorts
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `redis-server` of its own for one test, on a free loopback port, with no persistence.
///
/// ``start()`` returns once the server accepts connections; ``stop()`` waits until it exited;
/// ``start()`` again reuses the same port. Stopped on deinit.
///
/// Stopping uses SIGKILL: a child that Foundation's `Process` spawns from a test inherits the
/// spawning thread's signal mask, in which SIGTERM is blocked, so `terminate()` would never end it.
package final class RedisServerProcess {
    package let port: Int
    package let password: String?
    private var process: Process?

    /// A server (not yet started) on `port`, or on a free port.
    package init(port: Int? = nil, password: String? = nil) throws {
        self.port = try port ?? LoopbackPort.free()
        self.password = password
    }

    /// A started server.
    package static func started(password: String? = nil) async throws -> RedisServerProcess {
        let server = try RedisServerProcess(password: password)
        try await server.start()
        return server
    }

    deinit {
        stop()
    }

    /// `redis://[:password@]127.0.0.1:port[/database]`.
    package func url(database: Int = 0, password: String? = nil) -> String {
        let password = password ?? self.password
        return "redis://" + (password.map { ":\($0)@" } ?? "") + "127.0.0.1:\(port)" + (database == 0 ? "" : "/\(database)")
    }

    /// Starts the server and waits (bounded) until it accepts TCP connections.
    package func start() async throws {
        precondition(process?.isRunning != true, "already running")
        let process = Process()
        process.executableURL = try Self.executable()
        var arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if let password { arguments += ["--requirepass", password] }
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<200 {
            if LoopbackPort.acceptsConnections(port) { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ServerError(message: "redis-server on port \(port) did not start")
    }

    /// Stops the server and waits until it exited (the same as ``kill()``: nothing is persisted).
    package func stop() {
        kill()
    }

    /// Kills the server (SIGKILL), as a crash would, and waits until it exited.
    package func kill() {
        guard let process, process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops the server answering (SIGSTOP) until ``resume()``: its connections stay open and new ones
    /// are accepted by the kernel, but nothing is read or answered, for as long as the test needs.
    package func suspend() {
        guard let process, process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGSTOP)
    }

    /// Lets a suspended server go on (SIGCONT).
    package func resume() {
        guard let process, process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGCONT)
    }

    package struct ServerError: Error, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    private static func executable() throws -> URL {
        for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        throw ServerError(message: "redis-server not found (apt-get install redis-server)")
    }
}
