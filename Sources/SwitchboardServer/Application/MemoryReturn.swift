import Synchronization

#if canImport(Glibc)
import CMalloc
#endif

/// Makes the C allocator give large freed buffers back to the system at once.
///
/// glibc serves allocations above `M_MMAP_THRESHOLD` with their own mappings, unmapped when freed, but
/// by default it raises that threshold to the size of each such buffer freed (up to 32 MiB): after one
/// client made the node buffer megabytes, later buffers of that size come from the heap and stay
/// resident after they are freed. A fixed threshold turns that off (PROTOCOL.md §9: what an attacking
/// client costs, it costs only while connected). Call once, before the node starts.
package func returnLargeBuffersToTheSystem() {
    #if canImport(Glibc)
    // Setting either value fixes both thresholds (no dynamic adjustment).
    _ = mallopt(M_MMAP_THRESHOLD, 256 * 1024)
    _ = mallopt(M_TRIM_THRESHOLD, 1024 * 1024)
    #endif
}

/// When the last trim ran (monotonic nanoseconds), so that trims run at most once a second.
private let lastTrim = Atomic<UInt64>(0)

/// Gives the allocator's free pages back to the system (`malloc_trim`), at most once a second.
///
/// After a connection that was backpressured closes, the many small buffers it held are free but their
/// pages stay resident in the allocator's arenas; trimming returns them. The rate bound keeps a client
/// that makes connections close this way from turning trims into work for the node.
package func returnFreedMemoryToTheSystem(now: UInt64) {
    let last = lastTrim.load(ordering: .relaxed)
    guard now &- last >= 1_000_000_000 || last == 0,
        lastTrim.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    else { return }
    #if canImport(Glibc)
    _ = malloc_trim(0)
    #endif
}
