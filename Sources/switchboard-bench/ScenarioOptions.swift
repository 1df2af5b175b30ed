import ArgumentParser
import Histogram
import NIOCore
import SwitchboardBasics

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the `idle`, `upgrades` and `storm` scenarios share: one server (any URL, Switchboard or the peer),
/// the processes to measure and the output form.
struct ScenarioOptions: ParsableArguments {
    @Option(help: "WebSocket URL of the server under test, e.g. ws://127.0.0.1:8080/ws.")
    var url: String

    @Option(help: "HS256 secret of the server. Default: $SWITCHBOARD_JWT_SECRET.")
    var secret: String?

    @Option(name: .customLong("pid"), help: "A server process to measure: CPU seconds and RSS (repeatable).")
    var pid: [Int32] = []

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Prefix of the user ids. Default: a scenario prefix and 6 random hex digits.")
    var tag: String?

    func validate() throws {
        guard WebSocketURL(url) != nil else { throw ValidationError("--url: expected ws://HOST:PORT/PATH, got \(url)") }
        if let tag,
            tag.isEmpty || tag.count > 40
                || !tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._@-".contains($0)) })
        {
            throw ValidationError("--tag: 1-40 characters of [A-Za-z0-9._@-]")
        }
        guard Secret.resolve(secret) != nil else {
            throw ValidationError("no secret: pass --secret or set SWITCHBOARD_JWT_SECRET")
        }
    }

    var webSocketURL: WebSocketURL { WebSocketURL(url)! }
    var resolvedSecret: String { Secret.resolve(secret) ?? "" }

    func userTag(_ prefix: String) -> String {
        tag ?? prefix + Hex.string(UInt32.random(in: 0..<(1 << 24)), width: 6)
    }

    /// Fails when a `--pid` cannot be read, and says on standard error what the processes were started with.
    func checkProcesses(needingFiles files: Int = 0) throws {
        for pid in pid {
            guard ProcessStats.cpuSeconds(pid: pid) != nil else {
                throw ValidationError("--pid \(pid): cannot read /proc/\(pid)/stat")
            }
            ServerProcess.describe(pid: pid, needingFiles: files)
        }
    }

    /// The summed CPU seconds of the `--pid` processes now (nil without any, or when one cannot be read).
    func serverCPUSeconds() -> Double? {
        guard !pid.isEmpty else { return nil }
        var total = 0.0
        for pid in pid {
            guard let seconds = ProcessStats.cpuSeconds(pid: pid) else { return nil }
            total += seconds
        }
        return total
    }

    /// The summed VmRSS of the `--pid` processes now, in KiB.
    func serverRSSKiB() -> Int? {
        guard !pid.isEmpty else { return nil }
        var total = 0
        for pid in pid {
            guard let kib = ProcessStats.rssKiB(pid: pid) else { return nil }
            total += kib
        }
        return total
    }
}

/// What a server process was started with that decides whether a scenario measures it or its limits.
enum ServerProcess {
    /// The environment variables that lift the node's per-user and per-address limits (the peer has none).
    static let limitVariables = [
        "SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND", "SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND",
        "SWITCHBOARD_LIMITS_INVITES_PER_MINUTE", "SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS_PER_ADDRESS",
        "SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS", "SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS",
    ]

    /// Logs the process's open-file limit (a warning when it is below `files`) and its limit variables.
    static func describe(pid: Int32, needingFiles files: Int) {
        if let limit = openFileLimit(pid: pid) {
            let warning = files > 0 && limit < files ? " — below the \(files) this run needs: start it under `ulimit -n`" : ""
            Progress.log("server pid \(pid): open-file limit \(limit)\(warning)")
        }
        guard let environ = ProcessStats.readFile("/proc/\(pid)/environ") else { return }
        let set = environ.split(separator: "\0").filter { entry in
            limitVariables.contains { entry.hasPrefix($0 + "=") }
        }
        Progress.log("server pid \(pid): " + (set.isEmpty ? "no limit variables set" : set.joined(separator: " ")))
    }

    /// The soft "Max open files" of `/proc/PID/limits`.
    static func openFileLimit(pid: Int32) -> Int? {
        guard let limits = ProcessStats.readFile("/proc/\(pid)/limits") else { return nil }
        for line in limits.split(separator: "\n") where line.hasPrefix("Max open files") {
            return line.split(separator: " ").dropFirst(3).first.flatMap { Int($0) }
        }
        return nil
    }
}

/// This process's `RLIMIT_NOFILE`.
enum FileLimit {
    /// Raises the soft limit to at least `wanted` (within the hard limit); fails when the hard limit is lower.
    static func raise(to wanted: Int) throws {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        guard limit.rlim_cur < rlim_t(wanted) else { return }
        guard limit.rlim_max >= rlim_t(wanted) else {
            throw BenchError.setup(
                "this run needs \(wanted) open files, the hard limit is \(limit.rlim_max): raise it (ulimit -Hn)"
            )
        }
        limit.rlim_cur = rlim_t(wanted)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw BenchError.setup("cannot raise the open-file limit to \(wanted)")
        }
    }
}

/// Latencies in µs (HdrHistogram, 3 significant digits).
struct LatencyHistogram {
    private var histogram: Histogram<UInt64>

    init() {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        self.histogram = histogram
    }

    mutating func record(from start: UInt64, to end: UInt64) {
        histogram.record(end > start ? end - start : 0)
    }

    /// The percentile in µs, nil when nothing was recorded.
    func percentile(_ value: Double) -> UInt64? {
        histogram.totalCount > 0 ? histogram.valueAtPercentile(value) : nil
    }

    static var nowMicroseconds: UInt64 { NIODeadline.now().uptimeNanoseconds / 1000 }
}
