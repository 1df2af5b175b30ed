import ArgumentParser
import NIOCore
import NIOPosix
import SwitchboardBasics

/// `switchboard-bench idle`: many idle authenticated connections on one server, its RSS per connection and
/// the time to establish them (issue 10).
struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle",
        abstract: "--connections idle authenticated WebSockets on one server: time to open them, RSS per connection.",
        discussion: """
            Opens --connections silent authenticated WebSockets (users <tag>u<k>, --connect-concurrency \
            upgrades in flight), all from 127.0.0.1, waits --settle seconds once all are open, and reports the \
            time to open them and, with --pid, the server's VmRSS before, after and per connection (KiB). \
            A Switchboard node must be started with its per-address limits lifted \
            (SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND, SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS_PER_ADDRESS, \
            SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS), websocket.max_connections at least --connections \
            (10000 by default: exactly the seed's max_connections), and an open-file limit above --connections \
            (`ulimit -n 20000`); the limits it was started with are printed. This process raises its own.
            """
    )

    @OptionGroup var server: ScenarioOptions

    @Option(help: "Idle connections to open.")
    var connections = 10_000

    @Option(help: "Upgrades in flight at once while connecting.")
    var connectConcurrency = 64

    @Option(help: "Seconds to wait once all connections are open, before reading RSS.")
    var settle: Double = 3

    @Option(help: "Seconds opening the connections may take before the run fails.")
    var openTimeout = 300

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard connectConcurrency >= 1 else { throw ValidationError("--connect-concurrency must be at least 1") }
        guard settle >= 0, settle.isFinite else { throw ValidationError("--settle must not be negative") }
        guard openTimeout >= 1 else { throw ValidationError("--open-timeout must be at least 1") }
    }

    mutating func run() async throws {
        try FileLimit.raise(to: connections + 256)
        try server.checkProcesses(needingFiles: connections + 64)
        let settings = BenchSettings(
            sendURL: server.webSocketURL,
            recvURL: nil,
            pairs: 1,
            rate: 0,
            seconds: 1,
            size: 0,
            window: 1,
            kind: .signal,
            secret: server.resolvedSecret,
            tag: server.userTag("id"),
            connectConcurrency: connectConcurrency
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let bench = try await loop.submit { NIOLoopBound(Bench(settings: settings, loop: loop), eventLoop: loop) }.get()
        let connections = self.connections
        let before = server.serverRSSKiB()
        let clock = ContinuousClock()
        let started = clock.now
        let outcome: Result<Int, any Error>
        do {
            let timeout = openTimeout
            try await loop.flatSubmit {
                bench.value.openIdle(count: connections).failing(after: .seconds(Int64(timeout))) {
                    "only \(bench.value.openConnections) of \(connections) connections open after \(timeout) s "
                        + "(the server's open-file limit or websocket.max_connections?)"
                }
            }.get()
            let seconds = (clock.now - started).inSeconds
            Progress.log("opened \(connections) idle connections in \(Format.fixed(seconds, 2)) s")
            try await Task.sleep(for: .milliseconds(Int(settle * 1000)))
            let after = server.serverRSSKiB()
            let open = try await loop.submit { bench.value.openConnections }.get()
            report(open: open, seconds: seconds, before: before, after: after)
            outcome = .success(open)
        } catch {
            outcome = .failure(error)
        }
        _ = try? await loop.flatSubmit { bench.value.closeAll() }.get()
        try await group.shutdownGracefully()
        let open = try outcome.get()
        if open < connections {
            throw BenchError.setup("only \(open) of \(connections) connections were still open after --settle")
        }
    }

    private func report(open: Int, seconds: Double, before: Int?, after: Int?) {
        let perConnection = before.flatMap { b in after.map { Double($0 - b) / Double(connections) } }
        let filesLimit = server.pid.first.flatMap(ServerProcess.openFileLimit)
        if server.json {
            var line = JSONLine()
            line.add("tool", "switchboard-bench")
            line.add("scenario", "idle \(connections)")
            line.add("connections", connections)
            line.add("open", open)
            line.add("connect_s", seconds, digits: 3)
            line.add("connections_per_s", Double(connections) / max(seconds, 1e-9), digits: 0)
            line.add("pids", server.pid.map { Int($0) })
            line.add("server_rss_kib_before", before.map { UInt64($0) })
            line.add("server_rss_kib_after", after.map { UInt64($0) })
            line.add("kib_per_connection", perConnection, digits: 2)
            line.add("server_open_file_limit", filesLimit.map { UInt64($0) })
            print(line.text)
        } else {
            let kib = { (value: Int?) in value.map(String.init) ?? "-" }
            print(
                Format.table([
                    ["scenario", "open", "connect s", "RSS before KiB", "RSS after KiB", "KiB per connection"],
                    [
                        "idle \(connections)", String(open), Format.fixed(seconds, 2), kib(before), kib(after),
                        perConnection.map { Format.fixed($0, 2) } ?? "-",
                    ],
                ])
            )
        }
    }
}
