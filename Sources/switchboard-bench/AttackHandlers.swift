import NIOCore
import NIOPosix
import NIOWebSocket

/// A WebSocket client that never reads (autoRead is off, its `SO_RCVBUF` tiny) and writes `chunk` (complete
/// frames, see ``Wire/writeClientFrame(opcode:payload:into:)``) whenever ``pump(upTo:)`` is called and its
/// channel is writable: what makes a node queue answers nobody takes.
///
/// It sits first in the pipeline, in front of the WebSocket encoder, so a chunk of frames costs one write of
/// a shared buffer. It writes only while the channel is writable, so what waits in this process stays within
/// NIO's write watermark; once the node stops reading, the socket fills and the flood pauses until it drains.
/// The caller (``Attack``) pumps every flood from one timer, re-armed after each pass: a task that queued
/// itself again would keep the event loop from ever getting back to I/O (NIO runs tasks until none are due).
final class FloodHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let chunk: ByteBuffer
    private let onWrite: () -> Void
    private let onInactive: () -> Void
    private var context: ChannelHandlerContext?

    /// - Parameters:
    ///   - onWrite: after each chunk written.
    ///   - onInactive: once, when the connection is gone.
    init(chunk: ByteBuffer, onWrite: @escaping () -> Void, onInactive: @escaping () -> Void) {
        self.chunk = chunk
        self.onWrite = onWrite
        self.onInactive = onInactive
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // what came with the 101: dropped

    func channelInactive(context: ChannelHandlerContext) {
        onInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Writes up to `limit` chunks while the channel is writable, then flushes; returns how many.
    func pump(upTo limit: Int) -> Int {
        guard let context, context.channel.isActive else { return 0 }
        var written = 0
        while written < limit && context.channel.isWritable {
            context.write(Self.wrapOutboundOut(chunk), promise: nil)
            onWrite()
            written += 1
        }
        if written > 0 { context.flush() }
        return written
    }
}

/// A plain TCP connection that never completes a request: silent (`trickle` nil) or a slowloris that sends
/// one byte of an endless request head every `interval`. Reports when the node answers anything and when
/// the connection is gone.
final class IdleSocketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a slowloris sends, one byte at a time: a request line, then one header that never ends.
    private static let head = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)

    private let interval: TimeAmount?
    private let onAnswer: () -> Void
    private let onInactive: () -> Void
    private var answered = false
    private var sent = 0
    private var trickle: RepeatedTask?

    init(trickleEvery interval: TimeAmount?, onAnswer: @escaping () -> Void, onInactive: @escaping () -> Void) {
        self.interval = interval
        self.onAnswer = onAnswer
        self.onInactive = onInactive
    }

    func channelActive(context: ChannelHandlerContext) {
        if let interval {
            let me = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            trickle = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
                me.value.sendByte(context: loopBoundContext.value)
            }
        }
        context.fireChannelActive()
    }

    private func sendByte(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let byte = sent < Self.head.count ? Self.head[sent] : UInt8(ascii: "a")
        sent += 1
        var buffer = context.channel.allocator.buffer(capacity: 1)
        buffer.writeInteger(byte)
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !answered {
            answered = true
            onAnswer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        trickle?.cancel()
        onInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// An upgraded connection that only answers the close handshake (the reconnecting token's sessions).
final class QuietHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    private let onInactive: () -> Void

    init(onInactive: @escaping () -> Void) {
        self.onInactive = onInactive
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        if frame.opcode == .connectionClose { WebSocketClient.answerClose(frame, context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        onInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// One `GET path` on a fresh connection with `Connection: close`: the status code of the answer.
enum HTTPProbe {
    struct NoAnswer: Error {}

    static func get(on loop: any EventLoop, url: WebSocketURL, path: String, timeout: TimeAmount) -> EventLoopFuture<Int> {
        let promise = loop.makePromise(of: Int.self)
        let request = "GET \(path) HTTP/1.1\r\nHost: \(url.host):\(url.port)\r\nConnection: close\r\n\r\n"
        let timer = loop.scheduleTask(in: timeout) { promise.fail(NoAnswer()) }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusLineHandler(promise: promise))
                }
            }
            .connect(host: url.host, port: url.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
                case .failure(let error):
                    promise.fail(error)
                }
            }
        return promise.futureResult
    }

    /// Completes the promise with the status code of the first line, or fails it when the connection ends first.
    private final class StatusLineHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        private let promise: EventLoopPromise<Int>
        private var bytes: [UInt8] = []

        init(promise: EventLoopPromise<Int>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes.append(contentsOf: Self.unwrapInboundIn(data).readableBytesView)
            guard let end = bytes.firstIndex(of: UInt8(ascii: "\r")) else {
                if bytes.count > 1024 { promise.fail(NoAnswer()) }
                return
            }
            // "HTTP/1.1 200 OK"
            let line = bytes[..<end].split(separator: UInt8(ascii: " "))
            if line.count >= 2, let code = Int(String(decoding: line[1], as: UTF8.self)) {
                promise.succeed(code)
            } else {
                promise.fail(NoAnswer())
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(NoAnswer())
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
    }
}
