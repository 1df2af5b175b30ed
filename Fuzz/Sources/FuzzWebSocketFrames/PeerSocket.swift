import NIOCore
import NIOEmbedded

/// The socket under the pipeline, which `EmbeddedChannel` does not model: fails writes once closed;
/// while the client does not read, flushed data stays unsent; the channel turns unwritable above the
/// high water mark and writable again below the low one, as a socket channel does; a `read()` is
/// recorded (the harness then delivers the next bytes). Keeps a copy of everything written, sent or not.
final class PeerSocket: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var reading: Bool
    /// Whether a `read()` reached the socket since the harness last cleared it.
    var readRequested = false
    /// The most unsent data seen, in bytes.
    private(set) var maxPending = 0
    private var context: ChannelHandlerContext?
    private var written: [UInt8] = []

    init(reading: Bool) {
        self.reading = reading
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard context.channel.isActive else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        written += unwrapOutboundIn(data).readableBytesView
        context.write(data, promise: promise)
        updateWritability(context)
    }

    func flush(context: ChannelHandlerContext) {
        if reading { context.flush() }
        updateWritability(context)
    }

    func read(context: ChannelHandlerContext) {
        readRequested = true
    }

    /// The bytes written since the last call.
    func takeWritten() -> [UInt8] {
        defer { written.removeAll(keepingCapacity: true) }
        return written
    }

    /// The client takes everything it was sent, and keeps reading.
    func startReading() {
        reading = true
        guard let context else { return }
        context.flush()
        updateWritability(context)
    }

    private func updateWritability(_ context: ChannelHandlerContext) {
        guard context.channel.isActive,
            let pending = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)
        else { return }
        maxPending = max(maxPending, pending)
        let channel = context.channel as! EmbeddedChannel
        if channel.isWritable, pending > settings.writeBufferHighWaterMark {
            channel.isWritable = false
            context.fireChannelWritabilityChanged()
        } else if !channel.isWritable, pending < settings.writeBufferLowWaterMark {
            channel.isWritable = true
            context.fireChannelWritabilityChanged()
        }
    }
}
