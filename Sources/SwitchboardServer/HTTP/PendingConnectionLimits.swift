/// How many connections that have not upgraded to WebSocket a node holds at once
/// (`server.max_pending_connections_per_address`, `server.max_pending_connections`).
struct PendingConnectionLimits: Sendable, Equatable, CustomStringConvertible {
    /// File descriptors kept back for the node itself (event loops, listeners, Redis, the database,
    /// logs) before the pending-connection share is worked out.
    static let reservedFileDescriptors = 64

    /// Connections of one client address at once.
    var perAddress: Int
    /// Connections at once, over all addresses.
    var total: Int

    /// The configured limits, the total clamped to half of what the file descriptor limit leaves
    /// after ``reservedFileDescriptors`` (the other half is for WebSockets), so that pending
    /// connections alone never exhaust the node's descriptors and accepting (which is what lets a
    /// newcomer evict an idle connection) always works. At least 8; per address at most the total.
    static func effective(perAddress: Int, total: Int, fileDescriptorLimit: Int?) -> PendingConnectionLimits {
        var total = max(1, total)
        if let fileDescriptorLimit {
            total = min(total, max(8, (fileDescriptorLimit - reservedFileDescriptors) / 2))
        }
        return PendingConnectionLimits(perAddress: max(1, min(perAddress, total)), total: total)
    }

    var description: String { "\(perAddress) per address, \(total) in all" }
}
