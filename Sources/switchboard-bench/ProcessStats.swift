import SwitchboardBasics

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The server processes' CPU time and resident memory, read from procfs (Linux).
///
/// Read from the async orchestration code, never on the event loop.
enum ProcessStats {
    /// The whole content of a small (procfs) file, read until end of file: procfs reports size 0 in `stat`.
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// utime + stime of `pid` in seconds (fields 14 and 15 of `/proc/PID/stat`), or nil.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = readFile("/proc/\(pid)/stat"),
            let paren = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm) " come field 3 (state) onwards; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: paren)...].split(separator: " ")
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (utime + stime) / (ticks > 0 ? ticks : 100)
    }

    /// VmRSS of `pid` in KiB (`/proc/PID/status`), or nil.
    static func rssKiB(pid: Int32) -> Int? {
        guard let status = readFile("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2 { return Int(parts[1]) }
        }
        return nil
    }
}

/// VmRSS of one process (or none), sampled every 50 ms window after window, from the async orchestration
/// code (a sample is a read of `/proc/PID/status`).
struct RSSTrace {
    /// The peak of one window, and when a sample passed the cap, how far into the window (seconds).
    struct Window {
        var peakKiB: Int?
        var peakAt: Double?
        var cappedAt: Double?
    }

    let pid: Int32?
    private(set) var lastKiB: Int?

    init(pid: Int32?) {
        self.pid = pid
        self.lastKiB = pid.flatMap(ProcessStats.rssKiB)
    }

    /// Samples for `seconds`, or until a sample is above `capKiB`.
    mutating func sample(for seconds: Double, capKiB: Int? = nil) async -> Window {
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        var window = Window()
        var next = start
        while clock.now < end {
            if let pid, let rss = ProcessStats.rssKiB(pid: pid) {
                lastKiB = rss
                let at = (clock.now - start).inSeconds
                if rss > window.peakKiB ?? -1 {
                    window.peakKiB = rss
                    window.peakAt = at
                }
                if let capKiB, rss > capKiB {
                    window.cappedAt = at
                    break
                }
            }
            next = next + .milliseconds(50)
            try? await clock.sleep(until: min(next, end))
        }
        return window
    }
}
