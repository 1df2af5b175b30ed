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
