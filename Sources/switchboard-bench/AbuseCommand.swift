import ArgumentParser
import NIOCore
import NIOPosix
import SwitchboardBasics

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `switchboard-bench abuse`: a node's memory and a well-behaved pair's service while hostile clients attack.
struct Abuse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abuse",
        abstract: "A node's RSS and a well-behaved pair's round trips while clients attack it (issue 8).",
        discussion: """
            A well-behaved pair (<tag>a, <tag>b) connects: A sends text messages carrying their send time to B at \
            --pair-rate per second and B echoes each back (round trip, µs, HdrHistogram); every --call-interval \
            A calls B (invite, accept, hangup); /healthz is asked twice a second. After --warmup seconds (the \
            quiet phase) the attack runs for --seconds: --non-readers clients that upgrade and then flood pings \
            (125-byte payload), heartbeats and texts to an offline user without ever reading (SO_RCVBUF 1 KiB, \
            autoRead off), --idle-sockets TCP connections that never send a request and --slowloris ones that \
            send a byte every --slowloris-interval, and one token reconnecting as fast as the node answers. \
            Dropped attackers come back. Then the attackers leave and the pair goes on for --settle seconds \
            (the after phase). With --pid, the node's VmRSS is read every 50 ms: the baseline (end of the quiet \
            phase), the peak, and the RSS at the end; a sample above --rss-cap-mib ends the attack early. \
            Each attacker kind connects from its own 127.0.0.x (non-readers .2, sockets .3, token .4) unless \
            --same-address. Traffic goes to 127.0.0.1 only, and the run stops by itself.
            """
    )

    @Option(help: "WebSocket URL of the node: ws://127.0.0.1:PORT/ws (loopback only).")
    var url: String

    @Option(help: "Clients that upgrade, flood and never read.")
    var nonReaders = 4

    @Option(help: "Plain TCP connections that never send a request.")
    var idleSockets = 400

    @Option(help: "Plain TCP connections that send one byte of a request head every --slowloris-interval.")
    var slowloris = 8

    @Option(help: "Seconds between a slowloris's bytes.")
    var slowlorisInterval: Double = 5

    @Flag(inversion: .prefixedNo, help: "One token reconnecting as fast as the node answers.")
    var reconnectToken = true

    @Option(help: "Seconds of attack.")
    var seconds: Double = 20

    @Option(help: "Seconds of the quiet phase before the attack.")
    var warmup: Double = 3

    @Option(help: "Seconds the pair goes on after the attackers left (the RSS 'after' is read at its end).")
    var settle: Double = 5

    @Option(help: "The pair's round trips per second (each user sends this many messages a second; the default budget is 50).")
    var pairRate: Double = 40

    @Option(help: "Seconds between the pair's calls (the default invite budget is 10 a minute).")
    var callInterval: Double = 7

    @Option(name: .customLong("rss-cap-mib"), help: "End the attack when the node's RSS passes this many MiB.")
    var rssCapMiB = 2048

    @Option(name: .customLong("pid"), help: "The node process: its VmRSS is sampled every 50 ms.")
    var pid: Int32?

    @Option(help: "HS256 secret of the node. Default: $SWITCHBOARD_JWT_SECRET.")
    var secret: String?

    @Option(help: "Prefix of the user ids. Default: ab and 6 random hex digits.")
    var tag: String?

    @Flag(help: "Every attacker from the default source address (127.0.0.1), like the pair.")
    var sameAddress = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        guard let parsed = WebSocketURL(url) else { throw ValidationError("--url: expected ws://HOST:PORT/PATH, got \(url)") }
        guard parsed.host == "127.0.0.1" || parsed.host == "localhost" else {
            throw ValidationError("--url: abuse traffic goes to 127.0.0.1 only, got \(parsed.host)")
        }
        for (name, value) in [("--non-readers", nonReaders), ("--idle-sockets", idleSockets), ("--slowloris", slowloris)]
        where !(0...10_000).contains(value) {
            throw ValidationError("\(name) must be within 0...10000")
        }
        for (name, value, range) in [
            ("--seconds", seconds, 0.1...600), ("--warmup", warmup, 0.5...600), ("--settle", settle, 0...600),
            ("--pair-rate", pairRate, 0.1...1000), ("--call-interval", callInterval, 0.5...600),
            ("--slowloris-interval", slowlorisInterval, 0.01...600),
        ] where !range.contains(value) {
            throw ValidationError("\(name) must be within \(range.lowerBound)...\(range.upperBound)")
        }
        guard rssCapMiB >= 1 else { throw ValidationError("--rss-cap-mib must be at least 1") }
        if let pid, ProcessStats.rssKiB(pid: pid) == nil {
            throw ValidationError("--pid \(pid): cannot read /proc/\(pid)/status")
        }
        if let tag,
            tag.isEmpty || tag.count > 40
                || !tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._@-".contains($0)) })
        {
            throw ValidationError("--tag: 1-40 characters of [A-Za-z0-9._@-]")
        }
        if Secret.resolve(secret) == nil { throw ValidationError("no secret: pass --secret or set SWITCHBOARD_JWT_SECRET") }
    }

    mutating func run() async throws {
        try Wire.selfCheck()
        let url = WebSocketURL(self.url)!
        let secret = Secret.resolve(self.secret) ?? ""
        let tag = self.tag ?? "ab" + Hex.string(UInt32.random(in: 0..<(1 << 24)), width: 6)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let pairLoop = loops[0]
        let attackLoop = loops[loops.count - 1]
        let pairSettings = AbusePair.Settings(
            url: url,
            secret: secret,
            callerUser: tag + "a",
            calleeUser: tag + "b",
            rate: pairRate,
            callInterval: callInterval
        )
        let attackSettings = AttackSettings(
            url: url,
            secret: secret,
            tag: tag,
            nonReaders: nonReaders,
            idleSockets: idleSockets,
            slowloris: slowloris,
            slowlorisInterval: slowlorisInterval,
            reconnectToken: reconnectToken,
            separateAddresses: !sameAddress
        )
        let pair = try await pairLoop.submit {
            NIOLoopBound(AbusePair(settings: pairSettings, loop: pairLoop), eventLoop: pairLoop)
        }.get()
        let attack = try await attackLoop.submit {
            NIOLoopBound(try Attack(settings: attackSettings, loop: attackLoop), eventLoop: attackLoop)
        }.get()
        do {
            try await measure(pair: pair, attack: attack, pairLoop: pairLoop, attackLoop: attackLoop, tag: tag)
        } catch {
            _ = try? await attackLoop.flatSubmit { attack.value.stop() }.get()
            _ = try? await pairLoop.flatSubmit { pair.value.closeAll() }.get()
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    private func measure(
        pair: NIOLoopBound<AbusePair>,
        attack: NIOLoopBound<Attack>,
        pairLoop: any EventLoop,
        attackLoop: any EventLoop,
        tag: String
    ) async throws {
        try await pairLoop.flatSubmit { pair.value.connect() }.get()
        try await pairLoop.submit { pair.value.start() }.get()
        Progress.log("pair connected; quiet for \(Format.fixed(warmup, 1)) s")
        var rss = RSSTrace(pid: pid)
        _ = await rss.sample(for: warmup)
        let baseline = rss.lastKiB

        let cpuAtStart = cpuSeconds()
        let clock = ContinuousClock()
        let attackStart = clock.now
        try await pairLoop.submit { pair.value.enter(.attack) }.get()
        try await attackLoop.submit { attack.value.start() }.get()
        Progress.log("attacking for \(Format.fixed(seconds, 1)) s")
        let during = await rss.sample(for: seconds, capKiB: rssCapMiB * 1024)
        let cpuAtEnd = cpuSeconds()
        let attackSeconds = (clock.now - attackStart).inSeconds
        if let at = during.cappedAt { Progress.log("RSS passed \(rssCapMiB) MiB after \(Format.fixed(at, 2)) s: attack ended") }
        let attackCounts = try await attackLoop.flatSubmit { attack.value.stop() }.get()

        try await pairLoop.submit { pair.value.enter(.after) }.get()
        Progress.log("attackers left; settling \(Format.fixed(settle, 1)) s")
        let afterWindow = await rss.sample(for: settle)
        let after = rss.lastKiB
        let pairCounts = try await pairLoop.flatSubmit { pair.value.stop(drain: .seconds(1)) }.get()
        let dropped = try await pairLoop.submit { pair.value.dropped }.get()
        _ = try? await pairLoop.flatSubmit { pair.value.closeAll() }.get()

        let report = AbuseReport(
            options: self,
            tag: tag,
            baselineKiB: baseline,
            attack: during,
            after: afterWindow,
            afterKiB: after,
            pair: pairCounts,
            pairDropped: dropped,
            attackers: attackCounts,
            attackSeconds: attackSeconds,
            nodeCPU: spent(cpuAtStart.node, cpuAtEnd.node),
            benchCPU: spent(cpuAtStart.bench, cpuAtEnd.bench)
        )
        print(json ? report.json : report.text)
    }
}

extension Abuse {
    /// CPU seconds so far of the node (with --pid) and of this process.
    fileprivate func cpuSeconds() -> (node: Double?, bench: Double?) {
        (pid.flatMap(ProcessStats.cpuSeconds), ProcessStats.cpuSeconds(pid: getpid()))
    }

    fileprivate func spent(_ before: Double?, _ after: Double?) -> Double? {
        guard let before, let after else { return nil }
        return after - before
    }
}

/// The figures of one abuse run, as tables or one JSON object.
struct AbuseReport {
    let options: Abuse
    let tag: String
    let baselineKiB: Int?
    let attack: RSSTrace.Window
    let after: RSSTrace.Window
    let afterKiB: Int?
    let pair: [PairCounts]
    let pairDropped: [String]
    let attackers: AttackCounts
    /// How long the attack ran (seconds: --seconds, or less when the RSS cap ended it).
    let attackSeconds: Double
    /// CPU seconds of the node and of the bench during the attack.
    let nodeCPU: Double?
    let benchCPU: Double?

    private var peakKiB: Int? {
        let values = [attack.peakKiB, after.peakKiB].compactMap { $0 }
        return values.max()
    }

    private static func mib(_ kib: Int?) -> String { kib.map { Format.fixed(Double($0) / 1024, 1) } ?? "-" }
    private static func ms(_ us: UInt64?) -> String { us.map { Format.fixed(Double($0) / 1000, 1) } ?? "-" }

    /// Median and maximum, in seconds.
    private static func spread(_ values: [Double]) -> (median: Double, max: Double)? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return (sorted[sorted.count / 2], sorted[sorted.count - 1])
    }

    private static func codes(_ counts: [Int: Int]) -> String {
        counts.isEmpty ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
    }

    private var scenario: String {
        "\(options.nonReaders) non-readers, \(options.idleSockets) idle sockets + \(options.slowloris) slowloris, "
            + (options.reconnectToken ? "1 reconnecting token" : "no reconnecting token")
            + ", \(Format.fixed(options.seconds, 0)) s"
    }

    var text: String {
        var lines: [String] = []
        lines.append(
            "abuse: \(scenario); pair \(Format.fixed(options.pairRate, 0)) round trips/s, a call every \(Format.fixed(options.callInterval, 0)) s"
        )
        if let pid = options.pid {
            var line = "node RSS (pid \(pid)): baseline \(Self.mib(baselineKiB)) MiB, peak \(Self.mib(peakKiB)) MiB"
            if let at = attack.peakAt, attack.peakKiB == peakKiB { line += " (\(Format.fixed(at, 1)) s into the attack)" }
            line += ", after \(Self.mib(afterKiB)) MiB (\(Format.fixed(options.settle, 0)) s after the attackers left)"
            lines.append(line)
            if let nodeCPU {
                lines.append(
                    "node CPU during the attack: \(Format.fixed(nodeCPU, 1)) s in \(Format.fixed(attackSeconds, 1)) s"
                        + " (\(Format.fixed(nodeCPU / attackSeconds, 2)) cores); the bench's: "
                        + (benchCPU.map { "\(Format.fixed($0, 1)) s" } ?? "?")
                )
            }
            if let at = attack.cappedAt {
                lines.append("attack ended early: RSS passed \(options.rssCapMiB) MiB \(Format.fixed(at, 2)) s into it")
            }
        }
        var rows = [
            [
                "pair phase", "sent", "received", "lost", "p50 ms", "p99 ms", "max ms", "calls", "calls ok",
                "slowest call ms", "healthz ok", "healthz failed", "slowest healthz ms",
            ]
        ]
        for phase in AbusePhase.allCases {
            let c = pair[phase.rawValue]
            rows.append([
                phase.name, String(c.sent), String(c.received), String(c.lost), Self.ms(c.p50), Self.ms(c.p99),
                Self.ms(c.maxLatency), String(c.callsStarted), String(c.callsCompleted),
                c.callsCompleted > 0 ? Self.ms(c.slowestCallSetup) : "-", String(c.healthzOK), String(c.healthzFailed),
                c.healthzOK > 0 ? Self.ms(c.slowestHealthz) : "-",
            ])
        }
        lines.append(Format.table(rows))
        for phase in AbusePhase.allCases where !pair[phase.rawValue].notices.isEmpty {
            lines.append("pair, \(phase.name): \(Format.counts(pair[phase.rawValue].notices))")
        }
        let slow = AbusePhase.allCases.flatMap { phase in pair[phase.rawValue].slowest.map { (phase, $0) } }
        if !slow.isEmpty {
            lines.append(
                "slowest round trips (sent at s since the pair started: ms): "
                    + slow.map { "\($0.0.name) \(Format.fixed($0.1.at, 2)): \(Self.ms($0.1.us))" }.joined(separator: ", ")
            )
        }
        if !pairDropped.isEmpty { lines.append("pair connections lost: \(pairDropped.joined(separator: "; "))") }

        let a = attackers
        let from = { (address: String) in options.sameAddress ? "" : " from \(address)" }
        var flood = "non-readers\(from("127.0.0.2")): \(a.floodConnections) upgrades (refused: \(Self.codes(a.floodRefused))"
        if a.floodConnectErrors > 0 { flood += ", \(a.floodConnectErrors) connect errors" }
        flood += "), dropped by the node \(a.floodDropped) times"
        if let s = Self.spread(a.floodLifetimes) {
            flood += " (after \(Format.fixed(s.median, 1)) s median, \(Format.fixed(s.max, 1)) s max)"
        }
        flood +=
            ", \(a.floodOpenAtEnd) open at the end; wrote \(a.floodRounds) pings, as many heartbeats and as many texts"
            + " (\(Format.fixed(Double(a.floodPayloadBytes) / 1_048_576, 1)) MiB of payload)"
        lines.append(flood)
        for (name, counts) in [("idle sockets", a.idle), ("slowloris", a.slowloris)] {
            var line = "\(name)\(from("127.0.0.3")): \(counts.opened) connections"
            if counts.connectErrors > 0 { line += " (\(counts.connectErrors) connect errors)" }
            line += ", closed by the node \(counts.closedByNode) times"
            if let s = Self.spread(counts.lifetimes) {
                line += " (after \(Format.fixed(s.median, 1)) s median, \(Format.fixed(s.max, 1)) s max)"
            }
            line += ", \(counts.answered) answered, \(counts.openAtEnd) open at the end"
            lines.append(line)
        }
        if options.reconnectToken {
            var line =
                "reconnecting token\(from("127.0.0.4")): \(a.reconnectAttempts) upgrade requests, answers \(Self.codes(a.reconnectStatus))"
            if !a.reconnectErrors.isEmpty { line += "; no answer: \(Format.counts(a.reconnectErrors))" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var line = JSONLine()
        line.add("tool", "switchboard-bench")
        line.add("mode", "abuse")
        line.add("scenario", scenario)
        line.add("tag", tag)
        line.add("non_readers", options.nonReaders)
        line.add("idle_sockets", options.idleSockets)
        line.add("slowloris", options.slowloris)
        line.add("reconnect_token", raw: options.reconnectToken ? "true" : "false")
        line.add("seconds", options.seconds, digits: 1)
        line.add("pair_rate", options.pairRate, digits: 1)
        line.add("pid", options.pid.map { Int($0) } ?? 0)
        line.add("rss_kib_baseline", [baselineKiB])
        line.add("rss_kib_peak", [peakKiB])
        line.add("rss_kib_after", [afterKiB])
        line.add("attack_capped_at_s", attack.cappedAt, digits: 2)
        line.add("attack_s", attackSeconds, digits: 2)
        line.add("node_cpu_s_attack", nodeCPU, digits: 2)
        line.add("bench_cpu_s_attack", benchCPU, digits: 2)
        for phase in AbusePhase.allCases {
            let c = pair[phase.rawValue]
            let p = "pair_\(phase.name)_"
            line.add(p + "sent", c.sent)
            line.add(p + "received", c.received)
            line.add(p + "lost", c.lost)
            line.add(p + "p50_us", c.p50)
            line.add(p + "p99_us", c.p99)
            line.add(p + "max_us", c.maxLatency)
            line.add(p + "calls", c.callsStarted)
            line.add(p + "calls_ok", c.callsCompleted)
            line.add(p + "healthz_ok", c.healthzOK)
            line.add(p + "healthz_failed", c.healthzFailed)
            line.add(p + "notices", c.notices)
        }
        line.add("pair_dropped", pairDropped.count)
        let a = attackers
        let byCode = { (counts: [Int: Int]) in Dictionary(uniqueKeysWithValues: counts.map { (String($0.key), $0.value) }) }
        line.add("flood_upgrades", a.floodConnections)
        line.add("flood_refused", byCode(a.floodRefused))
        line.add("flood_dropped", a.floodDropped)
        line.add("flood_lifetime_median_s", Self.spread(a.floodLifetimes)?.median, digits: 2)
        line.add("flood_pings", a.floodRounds)
        line.add("flood_payload_bytes", a.floodPayloadBytes)
        for (name, counts) in [("idle", a.idle), ("slowloris", a.slowloris)] {
            line.add(name + "_opened", counts.opened)
            line.add(name + "_closed_by_node", counts.closedByNode)
            line.add(name + "_lifetime_median_s", Self.spread(counts.lifetimes)?.median, digits: 2)
            line.add(name + "_open_at_end", counts.openAtEnd)
        }
        line.add("reconnect_attempts", a.reconnectAttempts)
        line.add("reconnect_status", byCode(a.reconnectStatus))
        line.add("reconnect_errors", a.reconnectErrors)
        return line.text
    }
}
