import CoreMetrics
import Logging
import NIOCore

/// The one channel handler of a Redis connection: writes encoded commands, decodes replies with a
/// hiredis reader, and matches them to pending commands in order.
///
/// The decisions live in ``RedisConnectionStateMachine``; this class turns its actions into I/O.
/// On a subscriber connection (`onMessage` set), `message` pushes go to `onMessage` on the event
/// loop instead of the pending-command FIFO. Each reply records its command's latency in
/// `commandDuration`.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisOutboundCommand
    typealias OutboundOut = ByteBuffer

    /// A command waiting for its reply: what the reply completes, and when it was handed to the connection.
    struct PendingReply {
        var completion: RedisReplyCompletion
        var enqueuedAt: NIODeadline
    }

    private var stateMachine = RedisConnectionStateMachine<PendingReply>()
    private let reader: RESPReader
    private let commandTimeout: TimeAmount?
    private let commandDuration: Timer
    private let onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var flushScheduled = false

    init(
        commandTimeout: TimeAmount?,
        commandDuration: Timer,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)?,
        allocator: ByteBufferAllocator,
        logger: Logger
    ) {
        self.commandTimeout = commandTimeout
        self.commandDuration = commandDuration
        self.onMessage = onMessage
        self.reader = RESPReader(allocator: allocator)
        self.logger = logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(stateMachine.channelClosed(), with: RedisError(code: .connectionClosed, message: "connection closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(stateMachine.channelClosed(), with: RedisError(code: .connectionClosed, message: "connection closed"))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let recognisingMessages = onMessage != nil
        do throws(RedisError) {
            try reader.feed(bytes)
            while stateMachine.isActive, let frame = try reader.nextFrame(recognisingMessages: recognisingMessages) {
                switch frame {
                case .message(let message):
                    onMessage?(message)
                case .reply(let value):
                    handle(stateMachine.receive(value), context: context)
                }
            }
        } catch {
            logger.warning("closing Redis connection: malformed reply stream", metadata: ["error": "\(error.message)"])
            close(context: context, failingWith: error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("closing Redis connection after an error", metadata: ["error": "\(error)"])
        close(context: context, failingWith: RedisError(code: .connectionClosed, message: "connection error: \(error)"))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(unwrapOutboundIn(data), context: context, writePromise: promise)
    }

    // MARK: Direct calls from RedisConnection (on the event loop)

    /// Registers and writes `command` without flushing.
    func enqueue(_ command: RedisOutboundCommand) {
        guard let context else {
            command.completion.fail(RedisError(code: .connectionClosed, message: "connection closed"))
            return
        }
        write(command, context: context, writePromise: nil)
    }

    /// Flushes once, at the end of this event-loop tick, whatever was written during it.
    func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushNow()
        }
    }

    /// Flushes now.
    func flushNow() {
        flushScheduled = false
        context?.flush()
    }

    // MARK: Internals

    private func write(_ command: RedisOutboundCommand, context: ChannelHandlerContext, writePromise: EventLoopPromise<Void>?) {
        let deadline = commandTimeout.map { NIODeadline.now() + $0 }
        let pending = PendingReply(completion: command.completion, enqueuedAt: command.enqueuedAt)
        switch stateMachine.enqueue(pending, replies: command.replies, deadline: deadline) {
        case .write(let armTimerAt):
            if let armTimerAt { armTimer(at: armTimerAt, context: context) }
            context.write(wrapOutboundOut(command.bytes), promise: writePromise)
        case .fail(let pending, let error):
            pending.completion.fail(error)
            writePromise?.fail(error)
        }
    }

    private func handle(_ action: RedisConnectionStateMachine<PendingReply>.ReplyAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .succeed(let pending, let value):
            recordLatency(of: pending)
            pending.completion.complete(with: .success(value))
        case .fail(let pending, let error):
            recordLatency(of: pending)
            pending.completion.fail(error)
        case .close(let promises, let error):
            logger.warning("closing Redis connection", metadata: ["error": "\(error.message)"])
            failAll(promises, with: error)
            context.close(promise: nil)
        }
    }

    private func armTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard let context else { return }
        switch stateMachine.timerFired(now: .now()) {
        case .none:
            break
        case .arm(let deadline):
            armTimer(at: deadline, context: context)
        case .close(let promises, let error):
            logger.warning("closing Redis connection: command timed out", metadata: ["pending": "\(promises.count)"])
            failAll(promises, with: error)
            context.close(promise: nil)
        }
    }

    private func close(context: ChannelHandlerContext, failingWith error: RedisError) {
        let promises = stateMachine.fail(error)
        failAll(promises, with: error)
        context.close(promise: nil)
    }

    private func failAll(_ pending: [PendingReply], with error: RedisError) {
        if !stateMachine.isActive {
            timer?.cancel()
            timer = nil
        }
        for command in pending { command.completion.fail(error) }
    }

    /// A reply (or an error reply) arrived for `pending`.
    private func recordLatency(of pending: PendingReply) {
        commandDuration.recordNanoseconds((NIODeadline.now() - pending.enqueuedAt).nanoseconds)
    }
}
