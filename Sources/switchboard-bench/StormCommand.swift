import ArgumentParser
import NIOCore
import NIOPosix

/// `switchboard-bench storm`: call set-ups at a fixed rate over a pool of connected pairs (issue 10).
struct CallStorm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm",
        abstract: "A call storm: --rate call set-ups per second over a pool of connected pairs, set-up latency.",
        discussion: """
            --pairs pairs of users (<tag>a<i> calls <tag>b<i>) connect first. Then for --seconds, --rate calls a \
            second start, each on a free pair (a call due while every pair is busy starts on the next one to \
            free up, counted as delayed): the caller sends call-invite (with --client-call-ids its own callId, \
            else none: the callee takes the server's from the relayed invite, if any), the callee answers the \
            relayed invite with call-accept, the caller sends an offer, the callee an answer and --candidates \
            ice-candidate signals, the caller its candidates, and once both parties have all of them the caller \
            hangs up; the call is complete when the callee gets the hangup. Reported: calls completed and failed \
            (call-failed or error notices, a closed connection, no hangup within --call-timeout), set-up latency \
            p50/p99 from the invite to the call-accept at the caller and to the last candidate received, and with \
            --pid the server's CPU seconds and calls per server CPU-second. Frames not waited for (call-ringing, \
            ice-servers, other notices) are skipped and counted. The peer keeps no call state and relays every \
            signal, so the same run measures it as a relay. A Switchboard node needs \
            SWITCHBOARD_LIMITS_INVITES_PER_MINUTE and SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND lifted.
            """
    )

    @OptionGroup var server: ScenarioOptions

    @Option(help: "Call set-ups started per second.")
    var rate: Double = 100

    @Option(help: "Seconds during which calls start (the run then waits for the last ones to end).")
    var seconds: Double = 5

    @Option(help: "Pairs of connected users the calls run on.")
    var pairs = 200

    @Option(help: "ICE candidates each party sends.")
    var candidates = 10

    @Option(help: "Seconds a call may take before it counts as failed.")
    var callTimeout: Double = 10

    @Flag(help: "Invites name their own callId (a node then looks it up among its records) instead of the server's.")
    var clientCallIds = false

    func validate() throws {
        guard rate > 0, rate.isFinite, rate <= 1_000_000 else { throw ValidationError("--rate must be within (0, 1000000]") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be positive") }
        guard (1...100_000).contains(pairs) else { throw ValidationError("--pairs must be within 1...100000") }
        guard (0...1000).contains(candidates) else { throw ValidationError("--candidates must be within 0...1000") }
        guard callTimeout > 0, callTimeout.isFinite else { throw ValidationError("--call-timeout must be positive") }
        guard Int(rate * seconds) >= 1 else { throw ValidationError("--rate × --seconds must be at least 1 call") }
    }

    mutating func run() async throws {
        try FileLimit.raise(to: 2 * pairs + 256)
        try server.checkProcesses(needingFiles: 2 * pairs + 64)
        let settings = Storm.Settings(
            url: server.webSocketURL,
            secret: server.resolvedSecret,
            tag: server.userTag("st"),
            pairs: pairs,
            rate: rate,
            seconds: seconds,
            candidates: candidates,
            callTimeout: .nanoseconds(Int64(callTimeout * 1e9)),
            clientCallIds: clientCallIds
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let storm = try await loop.submit { NIOLoopBound(Storm(settings: settings, loop: loop), eventLoop: loop) }.get()
        let outcome: Result<(Storm.Counts, Double?), any Error>
        do {
            let users = 2 * pairs
            try await loop.flatSubmit {
                storm.value.connect().failing(after: .seconds(60 + Int64(users / 100))) {
                    "the \(users) users were not all connected in time (the server's open-file limit?)"
                }
            }.get()
            Progress.log("connected \(2 * pairs) users")
            let cpuBefore = server.serverCPUSeconds()
            let counts = try await loop.flatSubmit { storm.value.run() }.get()
            let serverCPU = cpuBefore.flatMap { before in server.serverCPUSeconds().map { $0 - before } }
            outcome = .success((counts, serverCPU))
        } catch {
            outcome = .failure(error)
        }
        _ = try? await loop.flatSubmit { storm.value.closeAll() }.get()
        try await group.shutdownGracefully()
        let (counts, serverCPU) = try outcome.get()
        report(counts, serverCPU: serverCPU)
    }

    private func report(_ counts: Storm.Counts, serverCPU: Double?) {
        let perCPU = serverCPU.flatMap { $0 > 0 ? Double(counts.completed) / $0 : nil }
        let callsPerSecond = Double(counts.completed) / max(counts.elapsedSeconds, 1e-9)
        let scenario = "storm \(Format.fixed(rate, 0))/s" + (clientCallIds ? ", client callIds" : "")
        if server.json {
            var line = JSONLine()
            line.add("tool", "switchboard-bench")
            line.add("scenario", scenario)
            line.add("rate", rate, digits: 0)
            line.add("seconds", seconds, digits: 1)
            line.add("pairs", pairs)
            line.add("candidates", candidates)
            line.add("client_call_ids", raw: clientCallIds ? "true" : "false")
            line.add("started", counts.started)
            line.add("completed", counts.completed)
            line.add("failed", counts.failed)
            line.add("calls_per_s", callsPerSecond, digits: 1)
            line.add("accept_p50_us", counts.acceptP50)
            line.add("accept_p99_us", counts.acceptP99)
            line.add("candidates_p50_us", counts.candidatesP50)
            line.add("candidates_p99_us", counts.candidatesP99)
            line.add("server_cpu_s", serverCPU, digits: 2)
            line.add("calls_per_server_cpu_s", perCPU, digits: 0)
            line.add("delayed_starts", counts.delayedStarts)
            line.add("elapsed_s", counts.elapsedSeconds, digits: 3)
            line.add("pids", server.pid.map { Int($0) })
            line.add("failures", counts.failures)
            line.add("skipped", counts.skipped)
            print(line.text)
        } else {
            let us = { (value: UInt64?) in value.map { String($0) } ?? "-" }
            print(
                Format.table([
                    [
                        "scenario", "completed", "failed", "accept p50 µs", "accept p99 µs", "candidates p50 µs",
                        "candidates p99 µs", "server CPU s", "calls per CPU-s",
                    ],
                    [
                        scenario, String(counts.completed), String(counts.failed), us(counts.acceptP50),
                        us(counts.acceptP99), us(counts.candidatesP50), us(counts.candidatesP99),
                        serverCPU.map { Format.fixed($0, 2) } ?? "-", perCPU.map { Format.fixed($0, 0) } ?? "-",
                    ],
                ])
            )
            print(
                "\(counts.started) calls started in \(Format.fixed(counts.elapsedSeconds, 3)) s, \(counts.delayedStarts) delayed (no free pair)"
            )
            if !counts.failures.isEmpty { print("failed calls: \(Format.counts(counts.failures))") }
            if !counts.skipped.isEmpty { print("frames skipped: \(Format.counts(counts.skipped))") }
        }
    }
}
