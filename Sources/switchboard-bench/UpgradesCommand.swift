import ArgumentParser
import NIOCore
import NIOPosix

/// `switchboard-bench upgrades`: WebSocket upgrades per second, JWT verification included (issue 10).
struct Upgrades: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrades",
        abstract: "WebSocket upgrades per second (a fresh token each), their latency, upgrades per server CPU-second.",
        discussion: """
            --concurrency workers each loop for --seconds: TCP connect, the upgrade request with a token signed \
            for a user of its own (<tag>u<k>), wait for the 101, close (a close frame; the server closes TCP), \
            again. Reported: completed and failed upgrades (by HTTP status), upgrades/s, upgrade latency p50/p99 \
            (connect to 101, µs) and, with --pid, the server's CPU seconds and upgrades per server CPU-second. All \
            connections come from 127.0.0.1: a Switchboard node must be started with \
            SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND and SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS_PER_ADDRESS \
            lifted, or it answers 429 / resets the oldest pending connection.
            """
    )

    @OptionGroup var server: ScenarioOptions

    @Option(help: "Length of the run in seconds.")
    var seconds: Double = 5

    @Option(help: "Connections being upgraded at once.")
    var concurrency = 32

    func validate() throws {
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be positive") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be within 1...10000") }
    }

    mutating func run() async throws {
        try FileLimit.raise(to: concurrency + 256)
        try server.checkProcesses()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let url = server.webSocketURL
        let secret = server.resolvedSecret
        let tag = server.userTag("up")
        let concurrency = self.concurrency
        let upgrades = try await loop.submit {
            NIOLoopBound(
                UpgradeRun(loop: loop, url: url, secret: secret, tag: tag, concurrency: concurrency),
                eventLoop: loop
            )
        }.get()
        let cpuBefore = server.serverCPUSeconds()
        let seconds = self.seconds
        let counts = try await loop.flatSubmit {
            upgrades.value.run(seconds: seconds).failing(after: .seconds(Int64(seconds) + 30)) {
                "connections still unfinished 30 s after the run (the server accepts but does not answer?)"
            }
        }.get()
        let serverCPU = cpuBefore.flatMap { before in server.serverCPUSeconds().map { $0 - before } }
        try await group.shutdownGracefully()

        let perSecond = Double(counts.completed) / max(counts.elapsedSeconds, 1e-9)
        let perCPU = serverCPU.flatMap { $0 > 0 ? Double(counts.completed) / $0 : nil }
        let scenario = "upgrades \(concurrency) at once"
        if server.json {
            var line = JSONLine()
            line.add("tool", "switchboard-bench")
            line.add("scenario", scenario)
            line.add("concurrency", concurrency)
            line.add("seconds", seconds, digits: 1)
            line.add("completed", counts.completed)
            line.add("failed", counts.failed)
            line.add("upgrades_per_s", perSecond, digits: 0)
            line.add("p50_us", counts.p50)
            line.add("p99_us", counts.p99)
            line.add("server_cpu_s", serverCPU, digits: 2)
            line.add("upgrades_per_server_cpu_s", perCPU, digits: 0)
            line.add("elapsed_s", counts.elapsedSeconds, digits: 3)
            line.add("pids", server.pid.map { Int($0) })
            line.add("failures", counts.failures)
            print(line.text)
        } else {
            let us = { (value: UInt64?) in value.map { String($0) } ?? "-" }
            print(
                Format.table([
                    [
                        "scenario", "upgrades/s", "p50 µs", "p99 µs", "server CPU s", "upgrades per CPU-s", "completed",
                        "failed",
                    ],
                    [
                        scenario, Format.fixed(perSecond, 0), us(counts.p50), us(counts.p99),
                        serverCPU.map { Format.fixed($0, 2) } ?? "-", perCPU.map { Format.fixed($0, 0) } ?? "-",
                        String(counts.completed), String(counts.failed),
                    ],
                ])
            )
            if !counts.failures.isEmpty { print("failed upgrades: \(Format.counts(counts.failures))") }
        }
    }
}
