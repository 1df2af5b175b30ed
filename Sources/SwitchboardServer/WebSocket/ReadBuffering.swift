import NIOCore

/// How a connection reads in each of its phases.
///
/// NIO keeps the buffers a channel read into for its next reads (up to `maxMessagesPerRead` of them,
/// when one is still held elsewhere as the next read comes), and never shrinks them
/// (`ByteBuffer.clear(minimumCapacity:)`): what a connection's reads allocated stays with it for its
/// life. That was the largest thing an idle connection kept (issue 10's heap profile: 512 B of about
/// 4 KiB), and a connection that once sent big messages could keep several buffers of up to 64 KiB. So
/// a connection reads once per wake-up, into one buffer: the request head 128 bytes at a time, and the
/// WebSocket phase from that buffer, grown only when reads fill it. An idle connection keeps 128 bytes,
/// a busy one one buffer the size of its largest reads (at most 64 KiB).
struct ReadBuffering {
    let allocator: any RecvByteBufferAllocator
    let maxMessagesPerRead: UInt

    /// Until the request head has been read and the upgrade decided.
    static let request = ReadBuffering(allocator: FixedSizeRecvByteBufferAllocator(capacity: 128), maxMessagesPerRead: 1)
    /// An accepted WebSocket. (One read per wake-up costs an `epoll_wait` per full buffer: a few percent
    /// at the maximum rate, nothing at a moderate one; BENCHMARKS.md.)
    static let webSocket = ReadBuffering(
        allocator: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 128, maximum: 65_536),
        maxMessagesPerRead: 1
    )
    /// A plain HTTP request (its body may be large), as NIO reads by default.
    static let http = ReadBuffering(allocator: AdaptiveRecvByteBufferAllocator(), maxMessagesPerRead: 4)

    /// Call on the channel's loop.
    func apply(to channel: any Channel) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.recvAllocator, value: allocator)
        try options.setOption(.maxMessagesPerRead, value: maxMessagesPerRead)
    }
}
