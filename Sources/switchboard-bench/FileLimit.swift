#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
