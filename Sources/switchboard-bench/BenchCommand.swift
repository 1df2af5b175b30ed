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

extension MessageKind: ExpressibleByArgument {}

/// `switchboard-bench`: the project's own load generator. `load` (the default, so `switchboard-bench --url …`
/// is `switchboard-bench load --url …`) is wsload's scenario on SwiftNIO; `abuse` measures a node under attack;
/// `idle`, `upgrades` and `storm` measure any server (a node or the peer) at connections, upgrades and calls.
struct SwitchboardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard-bench",
        abstract: "Load generator for the Switchboard wire protocol.",
        subcommands: [Load.self, Abuse.self, Idle.self, Upgrades.self, CallStorm.self],
        defaultSubcommand: Load.self
    )
}

/// `switchboard-bench [load]`: wsload's scenario and report.
struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Pairs streaming signals or text (the scenario and report of shared/bench/wsload.c); the default.",
        discussion: """
            Pairs of users <tag>a<i> (on --url) and <tag>b<i> (on --recv-url, default --url) connect with HS256 \
            tokens; for --kind signal each pair sets up an audio call (call-invite, call-accept), then every caller \
            streams ice-candidate signals (or, for --kind text, text messages) carrying their send time to its \
            callee, at --rate messages/s in total or, at --rate 0, as fast as --window messages in flight per pair \
            allow. After --seconds sending stops; arrivals still count for 0.5 s. Reported: messages/s received \
            and sent, latency percentiles (send to receive, µs, HdrHistogram), lost (sent - received), error \
            notices, and with --pid the servers' CPU seconds in the window, messages per server CPU-second and RSS.
            --idle N instead opens N silent authenticated connections (alternating --url and --recv-url), waits \
            --settle seconds once all are open, and reports the servers' RSS growth per connection.
            """
    )

    @Option(
        name: [.customLong("url"), .customLong("send")],
        help: "WebSocket URL of the senders' node, e.g. ws://127.0.0.1:8080/ws."
    )
    var url: String

    @Option(
        name: [.customLong("recv-url"), .customLong("recv")],
        help: "WebSocket URL of the receivers' node (another node: cross-node). Default: --url."
    )
    var recvURL: String?

    @Option(help: "Pairs of users (2 connections each).")
    var pairs = 1000

    @Option(help: "Messages per second in total; 0 = maximum rate with --window messages in flight per pair.")
    var rate: Double = 0

    @Option(help: "Length of the measured window in seconds.")
    var seconds: Double = 5

    @Option(help: "Approximate message size in bytes (the padding is size - 120, as in wsload).")
    var size = 200

    @Option(help: "Messages in flight per pair at --rate 0.")
    var window = 8

    @Option(help: "signal: ice-candidate signals in a call; text: text messages (contentType 1).")
    var kind: MessageKind = .signal

    @Option(help: "HS256 secret of the nodes. Default: $SWITCHBOARD_JWT_SECRET.")
    var secret: String?

    @Option(name: .customLong("pid"), help: "A server process to measure: CPU seconds and RSS (repeatable).")
    var pid: [Int32] = []

    @Option(name: .customLong("pids"), help: "Server processes, comma-separated (wsload's form of --pid).")
    var pidList: String?

    @Flag(help: "Print one JSON object (wsload's fields, plus rss) instead of a table.")
    var json = false

    @Option(help: "Idle mode: open N silent authenticated connections; report RSS growth per connection of --pid.")
    var idle: Int?

    @Option(help: "Idle mode: seconds to wait once all connections are open, before reading RSS.")
    var settle: Double = 3

    @Option(help: "Prefix of the user ids. Default: sb and 6 random hex digits.")
    var tag: String?

    // Below the node's default server.max_pending_connections_per_address (64): beyond it, the node resets
    // the oldest connection that has not upgraded yet, one of this tool's.
    @Option(
        help:
            "Connection upgrades in flight at once while connecting (a node holds 64 unfinished requests per address by default)."
    )
    var connectConcurrency = 48

    var pids: [Int32] {
        pid + (pidList ?? "").split(separator: ",").compactMap { Int32($0.trimmingCharacters()) }
    }

    func validate() throws {
        guard WebSocketURL(url) != nil else { throw ValidationError("--url: expected ws://HOST:PORT/PATH, got \(url)") }
        if let recvURL, WebSocketURL(recvURL) == nil {
            throw ValidationError("--recv-url: expected ws://HOST:PORT/PATH, got \(recvURL)")
        }
        guard pairs >= 1 else { throw ValidationError("--pairs must be at least 1") }
        guard rate >= 0, rate.isFinite else { throw ValidationError("--rate must be 0 (maximum) or positive") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be positive") }
        guard (0...1_000_000).contains(size) else { throw ValidationError("--size must be within 0...1000000") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        if let idle, idle < 1 { throw ValidationError("--idle must be at least 1") }
        guard settle >= 0, settle.isFinite else { throw ValidationError("--settle must not be negative") }
        guard connectConcurrency >= 1 else { throw ValidationError("--connect-concurrency must be at least 1") }
        if let pidList, pidList.split(separator: ",").contains(where: { Int32($0.trimmingCharacters()) == nil }) {
            throw ValidationError("--pids: expected comma-separated process ids, got \(pidList)")
        }
        if let tag,
            tag.isEmpty || tag.count > 48
                || !tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._@-".contains($0)) })
        {
            throw ValidationError("--tag: 1-48 characters of [A-Za-z0-9._@-]")
        }
        if resolvedSecret == nil {
            throw ValidationError("no secret: pass --secret or set SWITCHBOARD_JWT_SECRET")
        }
    }

    private var resolvedSecret: String? { Secret.resolve(secret) }

    mutating func run() async throws {
        try Wire.selfCheck()
        for pid in pids where ProcessStats.cpuSeconds(pid: pid) == nil {
            throw ValidationError("--pid \(pid): cannot read /proc/\(pid)/stat")
        }
        let settings = BenchSettings(
            sendURL: WebSocketURL(url)!,
            recvURL: recvURL.flatMap(WebSocketURL.init),
            pairs: pairs,
            rate: rate,
            seconds: seconds,
            size: size,
            window: window,
            kind: kind,
            secret: resolvedSecret ?? "",
            tag: tag ?? "sb" + Hex.string(UInt32.random(in: 0..<(1 << 24)), width: 6),
            connectConcurrency: connectConcurrency
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let bench = try await loop.submit { NIOLoopBound(Bench(settings: settings, loop: loop), eventLoop: loop) }.get()
        do {
            if let idle {
                try await runIdle(count: idle, bench: bench, loop: loop)
            } else {
                try await runLoad(settings: settings, bench: bench, loop: loop)
            }
        } catch {
            _ = try? await loop.flatSubmit { bench.value.closeAll() }.get()
            try? await group.shutdownGracefully()
            throw error
        }
        _ = try? await loop.flatSubmit { bench.value.closeAll() }.get()
        try await group.shutdownGracefully()
    }

    // MARK: - Load

    private func runLoad(settings: BenchSettings, bench: NIOLoopBound<Bench>, loop: any EventLoop) async throws {
        let crossNode = settings.recvURL != nil
        var clock = NIODeadline.now()
        try await loop.flatSubmit { bench.value.openPairs() }.get()
        log("connected \(2 * pairs) users in \(elapsed(since: &clock)) s")
        if kind == .signal {
            try await loop.flatSubmit { bench.value.setUpCalls() }.get()
            log("set up \(pairs) calls in \(elapsed(since: &clock)) s")
        }
        let setupNotices = try await loop.submit { bench.value.setupNotices }.get()

        let pids = self.pids
        let rssBefore = pids.map(ProcessStats.rssKiB)
        let cpuBefore = pids.map(ProcessStats.cpuSeconds)
        let measurement = try await loop.submit { bench.value.startMeasuring() }.get()
        try await measurement.stopped.get()
        let cpuAfter = pids.map(ProcessStats.cpuSeconds)
        let counts = try await measurement.finished.get()
        let rssAfter = pids.map(ProcessStats.rssKiB)

        var serverCPU: Double?
        if !pids.isEmpty {
            var total = 0.0
            for (before, after) in zip(cpuBefore, cpuAfter) {
                guard let before, let after else {
                    total = .nan
                    break
                }
                total += after - before
            }
            serverCPU = total.isNaN ? nil : total
        }
        let perCPU = serverCPU.flatMap { $0 > 0 ? Double(counts.received) / $0 : nil }
        let receivedPerSecond = Double(counts.received) / max(counts.elapsedSeconds, 1e-9)
        let sentPerSecond = Double(counts.sent) / max(counts.elapsedSeconds, 1e-9)
        let lost = counts.sent - counts.received
        let scenario =
            "\(crossNode ? "cross-node" : "local") \(kind.rawValue) \(size) B "
            + (rate > 0 ? "\(Format.fixed(rate, 0))/s" : "max") + ", \(pairs) pairs"

        if json {
            var line = JSONLine()
            line.add("tool", "switchboard-bench")
            line.add("kind", kind.rawValue)
            line.add("pairs", pairs)
            line.add("rate", raw: rate > 0 ? Format.fixed(rate, 0) : "\"max\"")
            line.add("seconds", seconds, digits: 1)
            line.add("size", size)
            line.add("sent", counts.sent)
            line.add("received", counts.received)
            line.add("lost", lost)
            line.add("errors", counts.errors)
            line.add("msgs_per_s", receivedPerSecond, digits: 0)
            line.add("p50_us", counts.p50)
            line.add("p99_us", counts.p99)
            line.add("p999_us", counts.p999)
            line.add("server_cpu_s", serverCPU, digits: 2)
            line.add("msgs_per_server_cpu_s", perCPU, digits: 0)
            line.add("scenario", scenario)
            line.add("cross_node", raw: crossNode ? "true" : "false")
            line.add("window", rate > 0 ? 0 : window)
            line.add("sent_per_s", sentPerSecond, digits: 0)
            line.add("elapsed_s", counts.elapsedSeconds, digits: 3)
            line.add("max_us", counts.maxLatency)
            line.add("pids", pids.map { Int($0) })
            line.add("server_rss_kib_before", rssBefore)
            line.add("server_rss_kib_after", rssAfter)
            line.add("error_reasons", counts.errorReasons)
            line.add("notices", counts.notices)
            line.add("closed_by_server", counts.closedByServer)
            line.add("close_codes", Dictionary(uniqueKeysWithValues: counts.closeCodes.map { (String($0.key), $0.value) }))
            line.add("setup_notices", setupNotices)
            print(line.text)
        } else {
            let us = { (value: UInt64?) in value.map { String($0) } ?? "-" }
            print(
                Format.table([
                    [
                        "scenario", "msgs/s", "sent/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs",
                        "server CPU s", "msgs per CPU-s", "lost", "errors",
                    ],
                    [
                        scenario, Format.fixed(receivedPerSecond, 0), Format.fixed(sentPerSecond, 0),
                        us(counts.p50), us(counts.p99), us(counts.p999), us(counts.maxLatency),
                        serverCPU.map { Format.fixed($0, 2) } ?? "-", perCPU.map { Format.fixed($0, 0) } ?? "-",
                        String(lost), String(counts.errors),
                    ],
                ])
            )
            print(
                "sent \(counts.sent), received \(counts.received) in \(Format.fixed(counts.elapsedSeconds, 3)) s (+0.5 s drain)"
            )
            for (index, pid) in pids.enumerated() {
                let before = rssBefore[index].map { "\($0) KiB" } ?? "?"
                let after = rssAfter[index].map { "\($0) KiB" } ?? "?"
                print("server pid \(pid): RSS \(before) before, \(after) after")
            }
            if !counts.errorReasons.isEmpty { print("error notices by reason: \(describe(counts.errorReasons))") }
            if !counts.notices.isEmpty { print("other unexpected frames: \(describe(counts.notices))") }
            if counts.closedByServer > 0 || !counts.closeCodes.isEmpty {
                let codes = counts.closeCodes.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }
                print(
                    "connections closed by the server: \(counts.closedByServer) (close codes: \(codes.joined(separator: ", ")))"
                )
            }
            if !setupNotices.isEmpty { print("during set-up: \(describe(setupNotices))") }
        }
    }

    // MARK: - Idle

    private func runIdle(count: Int, bench: NIOLoopBound<Bench>, loop: any EventLoop) async throws {
        let pids = self.pids
        let before = pids.map(ProcessStats.rssKiB)
        var clock = NIODeadline.now()
        try await loop.flatSubmit { bench.value.openIdle(count: count) }.get()
        log("opened \(count) idle connections in \(elapsed(since: &clock)) s; settling \(Format.fixed(settle, 1)) s")
        try await Task.sleep(for: .milliseconds(Int(settle * 1000)))
        let after = pids.map(ProcessStats.rssKiB)
        let open = try await loop.submit { bench.value.openConnections }.get()
        var grown: Int?
        if !pids.isEmpty {
            grown = zip(before, after).reduce(0 as Int?) { sum, pair in
                guard let sum, let b = pair.0, let a = pair.1 else { return nil }
                return sum + a - b
            }
        }
        let perConnection = grown.map { Double($0) / Double(count) }
        if json {
            var line = JSONLine()
            line.add("tool", "switchboard-bench")
            line.add("idle_connections", count)
            line.add("open", open)
            line.add("pids", pids.map { Int($0) })
            line.add("server_rss_kib_before", before)
            line.add("server_rss_kib_after", after)
            line.add("kib_per_connection", perConnection, digits: 2)
            print(line.text)
        } else {
            let list = { (values: [Int?]) in values.map { $0.map(String.init) ?? "?" }.joined(separator: "+") }
            print(
                Format.table([
                    ["scenario", "open", "RSS before KiB", "RSS after KiB", "KiB per connection"],
                    [
                        "idle \(count)", String(open), pids.isEmpty ? "-" : list(before),
                        pids.isEmpty ? "-" : list(after), perConnection.map { Format.fixed($0, 2) } ?? "-",
                    ],
                ])
            )
        }
    }

    // MARK: - Helpers

    private func describe(_ counts: [String: Int]) -> String { Format.counts(counts) }

    private func elapsed(since clock: inout NIODeadline) -> String {
        let now = NIODeadline.now()
        defer { clock = now }
        return Format.fixed(Double((now - clock).nanoseconds) / 1e9, 2)
    }

    private func log(_ message: String) { Progress.log(message) }
}

/// The nodes' HS256 secret: `--secret`, else `$SWITCHBOARD_JWT_SECRET`.
enum Secret {
    static func resolve(_ given: String?) -> String? {
        if let given { return given }
        guard let value = getenv("SWITCHBOARD_JWT_SECRET") else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}

/// Progress on standard error (standard output carries only the report).
enum Progress {
    static func log(_ message: String) {
        let line = "switchboard-bench: " + message + "\n"
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { break }
            offset += written
        }
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var copy = self
        while copy.first == " " { copy.removeFirst() }
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
