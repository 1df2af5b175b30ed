import NIOCore
import NIOWebSocket

/// RFC 6455 framing in one handler: bytes to `WebSocketFrame`s inbound, frames to bytes outbound.
///
/// It takes the place of NIO's `WebSocketFrameEncoder` and `ByteToMessageHandler(WebSocketFrameDecoder)`,
/// which the upgrader installs: those are two handlers and a decoder, two contexts and two circular buffers that
/// every idle connection kept (about 0.9 KiB of its 6.3, issue 10's heap profile). This one keeps
/// nothing between frames: a partial frame's bytes, while one is incomplete.
///
/// Inbound, each whole frame is passed on with its payload still masked (as NIO's decoder does; the
/// session handler unmasks): to the session handler as a ``ClientFrame`` by a direct call, or through
/// the pipeline as NIO's `WebSocketFrame` when nothing asked for the direct calls. A frame NIO's decoder would refuse fires the same `NIOWebSocketError`
/// (longer than `maxFrameSize`, or a control frame that is fragmented or longer than 125 bytes), and
/// everything after it is dropped: the session handler is closing the connection.
///
/// Outbound, the header goes into the payload buffer's headroom when the buffer is not shared (see
/// `FrameBytes`), else header and payload are copied into one new buffer: one buffer per frame either
/// way, and no header buffer kept per connection.
package final class WebSocketFrameCodec: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = WebSocketFrame
    package typealias OutboundIn = WebSocketFrame
    package typealias OutboundOut = ByteBuffer

    private let maxFrameSize: Int
    /// This handler's context while it is in a pipeline, for ``write(_:promise:)``.
    private var context: ChannelHandlerContext?
    /// The session handler behind, which takes frames by a direct call once it asked to.
    private var frameReceiver: WebSocketSessionHandler?
    /// Bytes of a frame not yet whole; `nil` between frames.
    private var partial: ByteBuffer?
    private var failed = false

    package init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    // MARK: Inbound

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = Self.unwrapInboundIn(data)
        if var earlier = partial {
            partial = nil
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        do {
            while let frame = try Self.parseFrame(from: &bytes, maxFrameSize: maxFrameSize) {
                if let frameReceiver {
                    frameReceiver.receive(frame)
                } else {
                    context.fireChannelRead(Self.wrapInboundOut(frame.webSocketFrame))
                }
                guard !failed else { return }
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            return
        }
        if bytes.readableBytes > 0 {
            bytes.discardReadBytes()
            partial = bytes
        }
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        frameReceiver = nil
        partial = nil
    }

    /// From now on decoded frames go to `receiver` (the next handler) by a direct call: no pipeline hop,
    /// no boxing into `NIOAny`. Call on the channel's loop, from `receiver`'s `handlerAdded`.
    func deliverFrames(to receiver: WebSocketSessionHandler) {
        frameReceiver = receiver
    }

    /// The next whole frame at the front of `buffer`, consumed; `nil` (nothing consumed) if it is not all
    /// there yet.
    static func parseFrame(from buffer: inout ByteBuffer, maxFrameSize: Int) throws(NIOWebSocketError) -> ClientFrame? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        let fin = first & 0x80 != 0
        let opcode = WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!  // 4 bits always make an opcode
        let masked = second & 0x80 != 0
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let word = buffer.getInteger(at: start + offset, as: UInt16.self) else { return nil }
            length = Int(word)
            offset += 2
        } else if length == 127 {
            guard let word = buffer.getInteger(at: start + offset, as: UInt64.self) else { return nil }
            guard word <= UInt64(maxFrameSize) else { throw .invalidFrameLength }
            length = Int(word)
            offset += 8
        }
        if opcode.isControlOpcode {
            guard fin else { throw .fragmentedControlFrame }
            guard length <= 125 else { throw .multiByteControlFrameLength }
        }
        guard length <= maxFrameSize else { throw .invalidFrameLength }
        var maskKey: UInt32?
        if masked {
            guard let key = buffer.getInteger(at: start + offset, endianness: .little, as: UInt32.self) else { return nil }
            maskKey = key
            offset += 4
        }
        guard buffer.readableBytes >= offset + length else { return nil }
        buffer.moveReaderIndex(forwardBy: offset)
        let payload = buffer.readSlice(length: length)!
        return ClientFrame(fin: fin, reservedBits: first & 0x70, opcode: opcode, maskKey: maskKey, data: payload)
    }

    // MARK: Outbound

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(Self.wrapOutboundOut(Self.encode(Self.unwrapOutboundIn(data))), promise: promise)
    }

    /// Encodes and writes `frame` as a pipeline write would, for the handler right behind this one (the
    /// session handler), without boxing the frame. Call on the channel's loop.
    package func write(_ frame: WebSocketFrame, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(Self.wrapOutboundOut(Self.encode(frame)), promise: promise)
    }

    /// Writes `payload` as one binary frame, as ``write(_:promise:)`` does. Given its payload alone
    /// (no `WebSocketFrame` holding it too), the frame gets its header in the payload's headroom.
    package func write(binary payload: consuming ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let header = Header(first: 0x80 | UInt8(webSocketOpcode: .binary), length: payload.readableBytes)  // FIN
        context.write(Self.wrapOutboundOut(Self.encode(header, consume payload)), promise: promise)
    }

    /// `frame` as bytes on the wire (server frames are not masked; no extension is ever negotiated).
    package static func encode(_ frame: WebSocketFrame) -> ByteBuffer {
        encode(Header(of: frame, length: frame.data.readableBytes), frame.data)
    }

    private static func encode(_ header: Header, _ payload: consuming ByteBuffer) -> ByteBuffer {
        if prependHeader(header, to: &payload) { return payload }
        var header = header
        var bytes = ByteBufferAllocator().buffer(capacity: header.count + payload.readableBytes)
        header.withBytes { _ = bytes.writeBytes($0) }
        bytes.writeImmutableBuffer(payload)
        return bytes
    }

    /// Puts the header of `frame` (with `payload` as its data) into `payload`'s headroom, when it has
    /// room there and nothing else holds its storage; `false` when it has not.
    package static func prependHeader(of frame: WebSocketFrame, to payload: inout ByteBuffer) -> Bool {
        prependHeader(Header(of: frame, length: payload.readableBytes), to: &payload)
    }

    private static func prependHeader(_ header: Header, to payload: inout ByteBuffer) -> Bool {
        var header = header
        let prepended: Bool? = payload.modifyIfUniquelyOwned { buffer in
            guard buffer.readerIndex >= header.count else { return false }
            buffer.moveReaderIndex(to: buffer.readerIndex - header.count)
            header.withBytes { _ = buffer.setBytes($0, at: buffer.readerIndex) }
            return true
        }
        return prepended == true
    }

    /// A server frame's header: 2 bytes, and 2 or 8 more for a length over 125.
    private struct Header {
        private var bytes: (UInt64, UInt16) = (0, 0)
        private(set) var count = 2

        init(of frame: WebSocketFrame, length: Int) {
            var first = UInt8(webSocketOpcode: frame.opcode)
            if frame.fin { first |= 0x80 }
            if frame.rsv1 { first |= 0x40 }
            if frame.rsv2 { first |= 0x20 }
            if frame.rsv3 { first |= 0x10 }
            self.init(first: first, length: length)
        }

        /// `first`: the first byte (FIN, RSV and opcode bits).
        init(first: UInt8, length: Int) {
            count = withUnsafeMutableBytes(of: &bytes) { header in
                header[0] = first
                switch length {
                case ...125:
                    header[1] = UInt8(length)
                    return 2
                case ...0xFFFF:
                    header[1] = 126
                    header.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
                    return 4
                default:
                    header[1] = 127
                    header.storeBytes(of: UInt64(length).bigEndian, toByteOffset: 2, as: UInt64.self)
                    return 10
                }
            }
        }

        mutating func withBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
            let count = count
            return withUnsafeBytes(of: &bytes) { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
    }
}
