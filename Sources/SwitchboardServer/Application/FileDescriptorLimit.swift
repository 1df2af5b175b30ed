#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit (`RLIMIT_NOFILE`): every socket is one descriptor.
enum FileDescriptorLimit {
    /// The limit before and after ``raiseSoftLimitToHard()``.
    struct Outcome: Sendable, Equatable {
        /// The soft limit found at start.
        let before: Int
        /// The soft limit in force now (what the process can open).
        let soft: Int
        /// The hard limit (the most an unprivileged process may raise the soft limit to).
        let hard: Int
    }

    /// Raises the soft limit to the hard limit (many systems start services at a soft 1024 with a
    /// far higher hard limit); `nil` when the limit cannot be read. Process-wide, idempotent.
    static func raiseSoftLimitToHard() -> Outcome? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        let before = limit.rlim_cur
        var target = limit.rlim_max
        #if canImport(Darwin)
        // macOS refuses a soft limit above OPEN_MAX (or "unlimited").
        target = min(target, rlim_t(OPEN_MAX))
        #endif
        if target > limit.rlim_cur {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return Outcome(before: clamp(before), soft: clamp(limit.rlim_cur), hard: clamp(limit.rlim_max))
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value >= rlim_t(Int.max) ? Int.max : Int(value)
    }

    #if os(Linux)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
