import ArgumentParser
import SwitchboardBasics

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
    func serverCPUSeconds() -> Double? { summed(ProcessStats.cpuSeconds) }

    /// The summed VmRSS of the `--pid` processes now, in KiB.
    func serverRSSKiB() -> Int? { summed(ProcessStats.rssKiB) }

    private func summed<Value: AdditiveArithmetic>(_ read: (Int32) -> Value?) -> Value? {
        guard !pid.isEmpty else { return nil }
        var total = Value.zero
        for pid in pid {
            guard let value = read(pid) else { return nil }
            total += value
        }
        return total
    }
}
