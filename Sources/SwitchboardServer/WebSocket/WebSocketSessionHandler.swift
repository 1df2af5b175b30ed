import NIOCore
import NIOWebSocket

/// RFC 6455 connection semantics between NIO's WebSocket frame codec and an application handler.
///
/// Sits after `WebSocketFrameDecoder` / `WebSocketFrameEncoder` (and NIO's
/// `WebSocketProtocolErrorHandler`, if installed), before the application handler, which then
/// sees only whole, valid messages (`WebSocketMessage`) and writes `WebSocketFrame`s.
///
/// Inbound:
/// - Fragmented messages are reassembled (control frames may interleave); a message over
///   `maxMessageBytes` closes with 1009.
/// - Protocol violations close with 1002: a continuation with no message open, a new data frame
///   while one is open, reserved bits (no extension is ever negotiated), reserved opcodes,
///   unmasked client frames, fragmented or oversized control frames (NIO's decoder refuses those
///   first), invalid close payloads (1 byte, an invalid code, a reason that is not UTF-8).
/// - A text message that is not valid UTF-8 (checked once it is whole) closes with 1007.
/// - A ping is answered with a pong carrying its payload; a peer's close is answered with a close
///   echoing its code (1000 if it sent none), then TCP is closed.
///
/// Closing from the server (an error, a timer, or a `WebSocketCloseRequest`) sends one close frame,
/// ignores inbound data from then on and closes TCP when the peer's close arrives, or after
/// `closeTimeout`. Application writes after that fail with `WebSocketSessionError.closing`.
///
/// Timers (one scheduled task per connection at most; frames only set a flag):
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
public final class WebSocketSessionHandler: ChannelDuplexHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias InboundOut = WebSocketMessage
    public typealias OutboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    /// Where the close handshake stands.
    private enum State {
        /// Messages flow both ways.
        case open
        /// The server sent its close frame; waiting for the peer's close until the deadline.
        case closeSent(deadline: NIODeadline)
        /// TCP is being (or has been) closed.
        case closed
    }

    /// The timers as `TimeAmount`s; `nil` is off.
    private struct Timers {
        var read: TimeAmount?
        var write: TimeAmount?
        var ping: TimeAmount?
        var pong: TimeAmount?
        var close: TimeAmount

        init(_ settings: WebSocketSettings) {
            self.read = TimeAmount(enabled: settings.readTimeout)
            self.write = TimeAmount(enabled: settings.writeTimeout)
            self.ping = TimeAmount(enabled: settings.pingInterval)
            self.pong = TimeAmount(enabled: settings.pongTimeout)
            self.close = TimeAmount(enabled: settings.closeTimeout) ?? .zero
        }
    }

    private let settings: WebSocketSettings
    private let timers: Timers
    private var state: State = .open

    /// The fragments of the message being received, joined; `nil` between messages.
    private var partial: ByteBuffer?
    /// Whether `partial` is a text message.
    private var partialIsText = false

    /// Set by every inbound frame and `WebSocketActivity`; folded into `lastActivity` by the timer.
    private var sawActivity = false
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var lastPing = NIODeadline.uptimeNanoseconds(0)
    /// When the unanswered ping was sent; `nil` when no pong is due.
    private var pingSentAt: NIODeadline?
    /// Since when the channel has been unwritable; `nil` while writable.
    private var unwritableSince: NIODeadline?

    /// The one scheduled timer task, and when it fires.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    /// A handler applying `settings`.
    public init(settings: WebSocketSettings) {
        self.settings = settings
        self.timers = Timers(settings)
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        let marks = ChannelOptions.Types.WriteBufferWaterMark(
            low: settings.writeBufferLowWaterMark,
            high: max(settings.writeBufferHighWaterMark, settings.writeBufferLowWaterMark)
        )
        if let options = context.channel.syncOptions {
            try? options.setOption(.writeBufferWaterMark, value: marks)
        } else {
            context.channel.setOption(.writeBufferWaterMark, value: marks).whenFailure { _ in }
        }
        if context.channel.isActive {
            startTimers(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        partial = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        startTimers(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        cancelTimer()
        partial = nil
        context.fireChannelInactive()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
        } else if unwritableSince == nil, let write = timers.write {
            let now = context.eventLoop.now
            unwritableSince = now
            scheduleTimer(context: context, at: now + write)
        }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
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
            // An I/O error, or one from a handler further on: this connection is done.
            enterClosed(context: context, closeChannel: true)
        }
        context.fireErrorCaught(error)
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        sawActivity = true

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

        guard frame.reservedBits.isEmpty else {
            return failConnection(context: context, code: .protocolError, reason: "reserved bits set")
        }
        guard frame.maskKey != nil else {
            return failConnection(context: context, code: .protocolError, reason: "unmasked client frame")
        }

        switch frame.opcode {
        case .text, .binary:
            receiveDataFrame(context: context, frame: frame)
        case .continuation:
            receiveContinuation(context: context, frame: frame)
        case .ping:
            guard frame.fin, frame.length <= 125 else {
                return failConnection(context: context, code: .protocolError, reason: "bad control frame")
            }
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .pong:
            pingSentAt = nil
        case .connectionClose:
            receiveClose(context: context, frame: frame)
        default:
            failConnection(context: context, code: .protocolError, reason: "reserved opcode")
        }
    }

    /// A text or binary frame: a whole message, or the first fragment of one.
    private func receiveDataFrame(context: ChannelHandlerContext, frame: WebSocketFrame) {
        guard partial == nil else {
            return failConnection(context: context, code: .protocolError, reason: "data frame inside a fragmented message")
        }
        guard frame.length <= settings.maxMessageBytes else {
            return failConnection(context: context, code: .messageTooLarge, reason: "message too large")
        }
        let isText = frame.opcode == .text
        if frame.fin {
            deliver(context: context, payload: frame.unmaskedData, isText: isText)
        } else {
            partial = frame.unmaskedData
            partialIsText = isText
        }
    }

    /// A continuation frame: the next fragment of the open message.
    private func receiveContinuation(context: ChannelHandlerContext, frame: WebSocketFrame) {
        guard var message = partial else {
            return failConnection(context: context, code: .protocolError, reason: "continuation without a message")
        }
        guard message.readableBytes + frame.length <= settings.maxMessageBytes else {
            return failConnection(context: context, code: .messageTooLarge, reason: "message too large")
        }
        partial = nil  // keep `message` uniquely referenced while appending
        var fragment = frame.unmaskedData
        message.writeBuffer(&fragment)
        if frame.fin {
            deliver(context: context, payload: message, isText: partialIsText)
        } else {
            partial = message
        }
    }

    /// Hands a whole message to the application, once a text message has proved to be UTF-8.
    private func deliver(context: ChannelHandlerContext, payload: ByteBuffer, isText: Bool) {
        if isText {
            guard payload.readableBytesAreValidUTF8 else {
                return failConnection(context: context, code: .dataInconsistentWithMessage, reason: "invalid UTF-8")
            }
            context.fireChannelRead(Self.wrapInboundOut(.text(payload)))
        } else {
            context.fireChannelRead(Self.wrapInboundOut(.binary(payload)))
        }
    }

    /// The peer's close frame while open: check it, answer it, close TCP.
    private func receiveClose(context: ChannelHandlerContext, frame: WebSocketFrame) {
        var payload = frame.unmaskedData
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

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .open = state else {
            promise?.fail(WebSocketSessionError.closing)
            return
        }
        var frame = Self.unwrapOutboundIn(data)
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
        context.write(Self.wrapOutboundOut(frame), promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case let request as WebSocketCloseRequest:
            guard case .open = state else {
                promise?.succeed(())
                return
            }
            sendClose(context: context, code: request.code, reason: request.reason, peerClosed: false, promise: promise)
        case is WebSocketActivity:
            sawActivity = true
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
        partial = nil
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
        var payload = context.channel.allocator.buffer(capacity: 2 + min(reason.utf8.count, 123))
        payload.write(webSocketErrorCode: code)
        payload.writeSubstring(Self.closeReason(reason))
        sendCloseFrame(context: context, payload: payload, peerClosed: peerClosed, promise: promise)
    }

    /// Writes the close frame. If the peer's close already came, TCP closes once it is written;
    /// otherwise the handler waits for the peer's close until `closeTimeout`.
    private func sendCloseFrame(
        context: ChannelHandlerContext,
        payload: ByteBuffer,
        peerClosed: Bool,
        promise: EventLoopPromise<Void>?
    ) {
        partial = nil
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        if peerClosed {
            state = .closed
            cancelTimer()
            let written = context.writeAndFlush(Self.wrapOutboundOut(frame))
            written.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            promise?.completeWith(written)
        } else {
            let deadline = context.eventLoop.now + timers.close
            state = .closeSent(deadline: deadline)
            context.writeAndFlush(Self.wrapOutboundOut(frame), promise: promise)
            scheduleTimer(context: context, at: deadline)
        }
    }

    /// Stops everything and, if asked, closes TCP.
    private func enterClosed(context: ChannelHandlerContext, closeChannel: Bool) {
        if case .closed = state { return }
        state = .closed
        partial = nil
        cancelTimer()
        if closeChannel {
            context.close(promise: nil)
        }
    }

    /// `reason` cut at a character boundary so that code and reason fit a 125-byte control frame.
    static func closeReason(_ reason: String) -> Substring {
        guard reason.utf8.count > 123 else { return reason[...] }
        var end = reason.startIndex
        var bytes = 0
        for index in reason.indices {
            let next = reason.index(after: index)
            bytes += reason.utf8.distance(from: index, to: next)
            if bytes > 123 { break }
            end = next
        }
        return reason[..<end]
    }

    // MARK: Timers

    private func startTimers(context: ChannelHandlerContext) {
        guard timer == nil, case .open = state else { return }
        let now = context.eventLoop.now
        lastActivity = now
        lastPing = now
        if let deadline = nextDeadline(now: now) {
            scheduleTimer(context: context, at: deadline)
        }
    }

    /// Makes sure the timer fires no later than `deadline`. Only moves it earlier (rare).
    private func scheduleTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired(context: context)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    /// Checks every timer against one clock reading, acts, and schedules the next check.
    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        let now = context.eventLoop.now

        switch state {
        case .closed:
            return
        case .closeSent(let deadline):
            if now >= deadline {
                enterClosed(context: context, closeChannel: true)
            } else {
                scheduleTimer(context: context, at: deadline)
            }
            return
        case .open:
            break
        }

        if sawActivity {
            sawActivity = false
            lastActivity = now
        }
        if let read = timers.read, now - lastActivity >= read {
            return failConnection(context: context, code: .goingAway, reason: "read timeout")
        }
        if let pong = timers.pong, let sent = pingSentAt, now - sent >= pong {
            return failConnection(context: context, code: .goingAway, reason: "pong timeout")
        }
        if let write = timers.write, let since = unwritableSince, now - since >= write {
            return failConnection(context: context, code: .policyViolation, reason: "write timeout")
        }
        if let ping = timers.ping, pingSentAt == nil, now - lastPing >= ping {
            lastPing = now
            if timers.pong != nil {
                pingSentAt = now
            }
            let frame = WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))
            context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
        }
        if let next = nextDeadline(now: now) {
            scheduleTimer(context: context, at: next)
        }
    }

    /// The earliest moment a timer could expire, given what is known at `now`.
    private func nextDeadline(now: NIODeadline) -> NIODeadline? {
        var next: NIODeadline?
        func consider(_ deadline: NIODeadline) {
            next = next.map { min($0, deadline) } ?? deadline
        }
        if let read = timers.read {
            // Activity is only sampled here, so look again well before the deadline.
            consider(min(lastActivity + read, now + .nanoseconds(max(read.nanoseconds / 4, 1))))
        }
        if let sent = pingSentAt, let pong = timers.pong {
            consider(sent + pong)
        } else if let ping = timers.ping {
            consider(lastPing + ping)
        }
        if let since = unwritableSince, let write = timers.write {
            consider(since + write)
        }
        return next
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
