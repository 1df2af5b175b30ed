import NIOCore
import NIOWebSocket

#if canImport(Glibc)
import Glibc  // linger
#endif

/// RFC 6455 connection semantics between a WebSocket frame codec and an application handler.
///
/// Sits after the frame codec (the node's `WebSocketFrameCodec`, or NIO's `WebSocketFrameDecoder` /
/// `WebSocketFrameEncoder`), before the application handler, which then sees only whole, valid
/// messages (`WebSocketMessage`) and writes `WebSocketFrame`s.
///
/// Inbound:
/// - Fragmented messages are reassembled (control frames may interleave); a message over
///   `maxMessageBytes` closes with 1009.
/// - Protocol violations close with 1002: a continuation with no message open, a new data frame
///   while one is open, reserved bits (no extension is ever negotiated), reserved opcodes,
///   unmasked client frames, fragmented or oversized control frames (the codec refuses those
///   first), invalid close payloads (1 byte, an invalid code, a reason that is not UTF-8).
/// - A text message that is not valid UTF-8 (checked once it is whole) closes with 1007.
/// - A ping is answered with a pong carrying its payload (unless the receiver's `admitsPing()` says the
///   peer is over its budget); a peer's close is answered with a close echoing its code (1000 if it sent none), then TCP
///   is closed.
///
/// Backpressure (PROTOCOL.md §9): while the channel is unwritable (the peer does not read what it is
/// sent), the handler holds the pipeline's `read()`, so nothing more is read from that peer and it can
/// cause no new work; more than `maxPendingBytes` of unsent data closes with 1008 "too much unsent data",
/// and that close frame waits behind the unsent data, so TCP is reset after `closeTimeout`. Reads held
/// when the close is sent stay held: that peer's close handshake ends by the timer.
///
/// Closing from the server (an error, a timer, or a `WebSocketCloseRequest`) sends one close frame,
/// ignores inbound data from then on and closes TCP when the peer's close arrives, or after
/// `closeTimeout`. Application writes after that fail with `WebSocketSessionError.closing`.
///
/// Timers (one entry per connection in its loop's ``SessionTimerWheel``, so up to 100 ms late; frames
/// only set a flag):
/// - a ping every `pingInterval`; no pong within `pongTimeout` closes with 1001 "pong timeout";
/// - no inbound frame (nor `WebSocketActivity` event) for `readTimeout` closes with 1001
///   "read timeout"; activity is sampled when the timer fires, which it does at least every
///   quarter of `readTimeout`, so the close comes between 1 and 1.25 × `readTimeout` of silence;
/// - a channel unwritable for `writeTimeout` (a peer that does not read) closes with 1008
///   "write timeout" (policy violation: the peer broke the rule that it keep up). That close frame
///   sits behind the unsent data, so TCP is dropped after `closeTimeout` if it cannot be delivered.
///
/// Outbound frames pass through, forced to `fin: true`, unmasked and without reserved bits.
/// A `.connectionClose` frame written by the application is treated as a close request.
///
/// Graceful shutdown (`ChannelShouldQuiesceEvent`) closes with 1001 "node shutting down": the client
/// reconnects, to another node.
///
/// With the node's ``WebSocketFrameCodec`` in front and a ``WebSocketMessageReceiver`` as the
/// application, frames and messages pass between the three by direct calls on the loop instead of
/// through the pipeline, and the application's writes come in by ``send(binary:)`` and ``flush()``: the
/// same order and the same rules, without a handler hop and an `NIOAny` box per message each way (issue
/// 10's profile). A receiver given at ``init(limits:receiver:)`` is no handler at all: one pipeline
/// context fewer per connection.
package final class WebSocketSessionHandler: ChannelDuplexHandler {
    package typealias InboundIn = WebSocketFrame
    package typealias InboundOut = WebSocketMessage
    package typealias OutboundIn = WebSocketFrame
    package typealias OutboundOut = WebSocketFrame

    /// Where the close handshake stands.
    private enum State {
        /// Messages flow both ways.
        case open
        /// The server sent its close frame; waiting for the peer's close until the deadline.
        case closeSent(deadline: NIODeadline)
        /// TCP is being (or has been) closed.
        case closed
    }

    private let limits: WebSocketSessionLimits
    private var state: State = .open
    /// A `read()` held back while the channel is unwritable, to pass on once it drains.
    private var readHeld = false
    /// Whether the peer ever stopped taking what it was sent (its buffers are then worth trimming at the end).
    private var wasBackpressured = false
    private var assembler: WebSocketMessageAssembler
    /// Set once the channel is active.
    private var keepalive: WebSocketKeepalive?

    /// This handler's context while it is in a pipeline: ``send(binary:)`` and ``flush()`` write from here
    /// without a pass through the handlers behind it.
    private var context: ChannelHandlerContext?
    /// The node's codec in front, when it is there: frames are handed to it directly (no pipeline hop,
    /// no boxing into `NIOAny`), and it hands decoded frames here the same way.
    private var codec: WebSocketFrameCodec?
    /// The application, when it takes messages by a direct call.
    private var receiver: (any WebSocketMessageReceiver)?

    /// The loop's timers, and the instant this session's next check waits for there.
    private var timers: SessionTimerWheel?
    private var timerInstant: UInt64?

    /// A handler applying `limits` (shared by a listener's connections), with `receiver` as the
    /// application (no handler behind this one then), or with the handler behind as the application.
    package init(limits: WebSocketSessionLimits, receiver: (any WebSocketMessageReceiver)? = nil) {
        self.limits = limits
        self.receiver = receiver
        self.assembler = WebSocketMessageAssembler(maxMessageBytes: limits.maxMessageBytes)
    }

    /// A handler applying `settings`, with limits of its own.
    package convenience init(settings: WebSocketSettings) {
        self.init(limits: WebSocketSessionLimits(settings))
    }

    // MARK: Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        codec = try? context.pipeline.syncOperations.handler(type: WebSocketFrameCodec.self)
        codec?.deliverFrames(to: self)
        let marks = limits.waterMark
        if let options = context.channel.syncOptions {
            try? options.setOption(.writeBufferWaterMark, value: marks)
        } else {
            context.channel.setOption(.writeBufferWaterMark, value: marks).whenFailure { _ in }
        }
        if context.channel.isActive {
            startTimers(context: context)
        }
        receiver?.attached(to: self)
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        codec = nil
        receiver = nil
        cancelTimer()
        assembler.reset()
    }

    package func channelActive(context: ChannelHandlerContext) {
        startTimers(context: context)
        context.fireChannelActive()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        cancelTimer()
        assembler.reset()
        receiver?.sessionClosed()
        context.fireChannelInactive()
        if wasBackpressured {
            // Once what it held is freed, after this tick.
            context.eventLoop.execute { returnFreedMemoryToTheSystem(now: NIODeadline.now().uptimeNanoseconds) }
        }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            keepalive?.becameWritable()
            // Once closing, what a peer sent while its reads were held is not worth reading: it would
            // only be decoded and dropped. The close timer ends the connection.
            if readHeld, case .open = state {
                readHeld = false
                read(context: context)
            }
        } else {
            wasBackpressured = true
            if let deadline = keepalive?.becameUnwritable(now: context.eventLoop.now) {
                scheduleTimer(context: context, at: deadline)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError {
            // A frame the decoder refused. NIO's WebSocketProtocolErrorHandler, when installed,
            // has already sent the close frame and is closing TCP.
            if (try? context.pipeline.syncOperations.handler(type: WebSocketProtocolErrorHandler.self)) != nil {
                enterClosed(context: context, closeChannel: false)
            } else {
                failConnection(context: context, code: WebSocketErrorCode(decoderError: error), reason: "")
            }
        } else if error is ByteToMessageDecoderError {
            // Bytes after a decoder error: the connection is already being failed.
            enterClosed(context: context, closeChannel: true)
            return
        } else {
            // An I/O error, or one from a handler in front: this connection is done.
            enterClosed(context: context, closeChannel: true)
        }
        context.fireErrorCaught(error)
    }

    // MARK: Inbound

    /// From now on whole messages go to `receiver` (the next handler) by a direct call. Call on the
    /// channel's loop, from `receiver`'s `handlerAdded`. (It is not told ``WebSocketMessageReceiver/attached(to:)``.)
    package func deliverMessages(to receiver: any WebSocketMessageReceiver) {
        self.receiver = receiver
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(ClientFrame(Self.unwrapInboundIn(data)), context: context)
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.readComplete()
        context.fireChannelReadComplete()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        if case .open = state {
            sendClose(context: context, code: .goingAway, reason: "node shutting down", peerClosed: false)
        }
    }

    /// A frame from the codec in front, by a direct call. Call on the channel's loop.
    func receive(_ frame: ClientFrame) {
        guard let context else { return }
        receive(frame, context: context)
    }

    private func receive(_ frame: ClientFrame, context: ChannelHandlerContext) {
        keepalive?.activity()

        switch state {
        case .open:
            break
        case .closeSent:
            // Only the peer's close matters now; it completes the handshake.
            if frame.opcode == .connectionClose {
                enterClosed(context: context, closeChannel: true)
            }
            return
        case .closed:
            return
        }

        guard frame.reservedBits == 0 else {
            return failConnection(context: context, code: .protocolError, reason: "reserved bits set")
        }
        guard frame.maskKey != nil else {
            return failConnection(context: context, code: .protocolError, reason: "unmasked client frame")
        }

        switch frame.opcode {
        case .text, .binary, .continuation:
            switch assembler.receive(frame) {
            case .incomplete:
                break
            case .message(let message):
                if let receiver {
                    receiver.receive(message)
                } else {
                    context.fireChannelRead(Self.wrapInboundOut(message))
                }
            case .failure(let code, let reason):
                failConnection(context: context, code: code, reason: reason)
            }
        case .ping:
            guard frame.fin, frame.length <= 125 else {
                return failConnection(context: context, code: .protocolError, reason: "bad control frame")
            }
            guard receiver?.admitsPing() ?? true else { return }
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.payload)
            writeCapped(context: context, frame: pong, promise: nil)
            context.flush()
        case .pong:
            keepalive?.pongReceived()
        case .connectionClose:
            receiveClose(context: context, frame: frame)
        default:
            failConnection(context: context, code: .protocolError, reason: "reserved opcode")
        }
    }

    /// The peer's close frame while open: check it, answer it, close TCP.
    private func receiveClose(context: ChannelHandlerContext, frame: ClientFrame) {
        var payload = frame.payload
        var code: WebSocketErrorCode = .normalClosure
        if payload.readableBytes > 0 {
            guard let raw = payload.readInteger(as: UInt16.self) else {
                return failConnection(context: context, code: .protocolError, reason: "bad close payload", peerClosed: true)
            }
            guard WebSocketCloseCode.isValidOnWire(raw) else {
                return failConnection(context: context, code: .protocolError, reason: "invalid close code", peerClosed: true)
            }
            guard payload.readableBytesAreValidUTF8 else {
                return failConnection(context: context, code: .protocolError, reason: "invalid close reason", peerClosed: true)
            }
            code = WebSocketErrorCode(codeNumber: Int(raw))
        }
        sendClose(context: context, code: code, reason: "", peerClosed: true)
    }

    // MARK: Outbound

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(Self.unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// Writes `payload` as one binary message, as ``write(context:data:promise:)`` does a frame, without
    /// flushing, for the application handler behind this one (the same order as its pipeline writes, one
    /// hop fewer). The payload goes to the codec alone, so that the header can go into its headroom. Call
    /// on the channel's loop; dropped once the handler left the pipeline or began to close.
    package func send(binary payload: consuming ByteBuffer) {
        guard let context, case .open = state else { return }
        let length = payload.readableBytes
        if let codec {
            codec.write(binary: consume payload, promise: nil)
        } else {
            context.write(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: consume payload)), promise: nil)
        }
        closeIfTooMuchIsUnsent(context: context, besides: length)
    }

    /// Flushes from here, as the pipeline's flush would once it got past the handlers behind this one.
    package func flush() {
        context?.flush()
    }

    private func write(_ frame: WebSocketFrame, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard case .open = state else {
            promise?.fail(WebSocketSessionError.closing)
            return
        }
        var frame = frame
        if frame.opcode == .connectionClose {
            sendCloseFrame(context: context, payload: frame.data, peerClosed: false, promise: promise)
            return
        }
        if !frame.fin || frame.maskKey != nil || !frame.reservedBits.isEmpty {
            frame.fin = true
            frame.maskKey = nil
            frame.rsv1 = false
            frame.rsv2 = false
            frame.rsv3 = false
        }
        writeCapped(context: context, frame: frame, promise: promise)
    }

    /// Writes `frame`, then closes with 1008 if the unsent data before it was already over
    /// `maxPendingBytes` (so the node holds at most that plus one message).
    private func writeCapped(context: ChannelHandlerContext, frame: WebSocketFrame, promise: EventLoopPromise<Void>?) {
        if let codec {
            codec.write(frame, promise: promise)
        } else {
            context.write(Self.wrapOutboundOut(frame), promise: promise)
        }
        closeIfTooMuchIsUnsent(context: context, besides: frame.length)
    }

    /// Closes with 1008 if the unsent data, besides the `length` bytes just written, was over
    /// `maxPendingBytes`.
    private func closeIfTooMuchIsUnsent(context: ChannelHandlerContext, besides length: Int) {
        guard limits.maxPendingBytes > 0, !context.channel.isWritable,
            let pending = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes),
            pending - length > limits.maxPendingBytes
        else { return }
        failConnection(context: context, code: .policyViolation, reason: "too much unsent data")
    }

    /// Holds the pipeline's read while the peer does not take what it is sent, or while the receiver
    /// holds it.
    package func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            readHeld = true
            return
        }
        guard receiver?.admitsRead() ?? true else { return }
        context.read()
    }

    /// A read the receiver held back goes on (unless the channel is unwritable). Call on the channel's loop.
    package func readAgain() {
        guard let context else { return }
        read(context: context)
    }

    package func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case let request as WebSocketCloseRequest:
            guard case .open = state else {
                promise?.succeed(())
                return
            }
            sendClose(context: context, code: request.code, reason: request.reason, peerClosed: false, promise: promise)
        case is WebSocketActivity:
            keepalive?.activity()
            promise?.succeed(())
        default:
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    // MARK: Closing

    /// Fails the connection: sends a close frame with `code` (once) and closes as for any server close.
    private func failConnection(
        context: ChannelHandlerContext,
        code: WebSocketErrorCode,
        reason: String,
        peerClosed: Bool = false
    ) {
        guard case .open = state else { return }
        sendClose(context: context, code: code, reason: reason, peerClosed: peerClosed)
    }

    /// Sends a close frame with `code` and `reason` (cut to fit 123 bytes).
    private func sendClose(
        context: ChannelHandlerContext,
        code: WebSocketErrorCode,
        reason: String,
        peerClosed: Bool,
        promise: EventLoopPromise<Void>? = nil
    ) {
        let reason = WebSocketCloseCode.reasonThatFits(reason)
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.write(webSocketErrorCode: code)
        payload.writeSubstring(reason)
        sendCloseFrame(context: context, payload: payload, peerClosed: peerClosed, promise: promise)
    }

    /// Writes the close frame. If the peer's close already came, TCP closes once it is written;
    /// otherwise the handler waits for the peer's close. Either way no longer than `closeTimeout`.
    private func sendCloseFrame(
        context: ChannelHandlerContext,
        payload: ByteBuffer,
        peerClosed: Bool,
        promise: EventLoopPromise<Void>?
    ) {
        assembler.reset()
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        if peerClosed {
            // Closed once the reply is written, or after `closeTimeout` if it cannot be (a peer that
            // does not read): the handshake is over either way.
            let deadline = context.eventLoop.now + limits.closeTimeout
            state = .closeSent(deadline: deadline)
            cancelTimer()
            let written = context.writeAndFlush(Self.wrapOutboundOut(frame))
            written.assumeIsolated().whenComplete { _ in
                self.enterClosed(context: context, closeChannel: true)
            }
            promise?.completeWith(written)
            if case .closeSent = state { scheduleTimer(context: context, at: deadline) }
        } else {
            let deadline = context.eventLoop.now + limits.closeTimeout
            state = .closeSent(deadline: deadline)
            context.writeAndFlush(Self.wrapOutboundOut(frame), promise: promise)
            scheduleTimer(context: context, at: deadline)
        }
    }

    /// Stops everything and, if asked, closes TCP.
    private func enterClosed(context: ChannelHandlerContext, closeChannel: Bool) {
        if case .closed = state { return }
        state = .closed
        assembler.reset()
        cancelTimer()
        if closeChannel {
            context.close(promise: nil)
        }
    }

    // MARK: Timers

    private func startTimers(context: ChannelHandlerContext) {
        guard keepalive == nil, case .open = state else { return }
        let now = context.eventLoop.now
        let keepalive = WebSocketKeepalive(limits: limits, now: now)
        self.keepalive = keepalive
        if let deadline = keepalive.nextCheck(now: now) {
            scheduleTimer(context: context, at: deadline)
        }
    }

    /// Makes sure the timer fires no later than `deadline` (rounded up to the wheel's granularity).
    /// Only moves it earlier (rare).
    private func scheduleTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let instant = SessionTimerWheel.instant(for: deadline)
        if let current = timerInstant, current <= instant { return }
        let timers = self.timers ?? limits.timerWheels.wheel(on: context.eventLoop)
        self.timers = timers
        if let current = timerInstant { timers.remove(self, at: current) }
        timerInstant = instant
        timers.add(self, at: instant)
    }

    private func cancelTimer() {
        if let timerInstant { timers?.remove(self, at: timerInstant) }
        timerInstant = nil
    }

    /// The wheel's instant came: checks every timer against one clock reading, acts, and schedules
    /// the next check.
    func timerFired(at instant: UInt64) {
        guard instant == timerInstant, let context else { return }
        timerInstant = nil
        let now = context.eventLoop.now

        switch state {
        case .closed:
            return
        case .closeSent(let deadline):
            if now >= deadline {
                // The handshake did not complete: the peer may not even read. Reset rather than close,
                // so that the kernel does not keep the unsent data either (an orphaned, full socket).
                _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                enterClosed(context: context, closeChannel: true)
            } else {
                scheduleTimer(context: context, at: deadline)
            }
            return
        case .open:
            break
        }
        guard var keepalive else { return }
        let due = keepalive.check(now: now)
        self.keepalive = keepalive

        switch due {
        case .nothing:
            break
        case .ping:
            let ping = WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))
            context.writeAndFlush(Self.wrapOutboundOut(ping), promise: nil)
        case .timeout(.read):
            return failConnection(context: context, code: .goingAway, reason: "read timeout")
        case .timeout(.pong):
            return failConnection(context: context, code: .goingAway, reason: "pong timeout")
        case .timeout(.write):
            return failConnection(context: context, code: .policyViolation, reason: "write timeout")
        }
        if let next = keepalive.nextCheck(now: now) {
            scheduleTimer(context: context, at: next)
        }
    }
}

extension WebSocketErrorCode {
    /// The close code for a frame NIO's decoder refused.
    init(decoderError: NIOWebSocketError) {
        switch decoderError {
        case .invalidFrameLength: self = .messageTooLarge
        case .fragmentedControlFrame, .multiByteControlFrameLength: self = .protocolError
        }
    }
}

@available(*, unavailable)
extension WebSocketSessionHandler: Sendable {}
