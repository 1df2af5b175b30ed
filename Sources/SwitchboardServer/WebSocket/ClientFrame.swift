import NIOCore
import NIOWebSocket

#if _endian(big)
#error("ClientFrame's masking key is loaded little-endian")
#endif

/// A frame as a client sent it: its header's fields and its payload, still masked.
///
/// ``WebSocketFrameCodec`` hands these to the session handler instead of NIO's `WebSocketFrame`, which
/// keeps its buffers in a class of their own (an allocation per frame) and makes its masking key with a
/// generic initializer (four more): five of the fifteen allocations a relayed message cost on a single
/// node (issue 10, `scripts/bench-allocations`).
struct ClientFrame {
    var fin: Bool
    /// RSV1-3 as they sit in the first byte (`0x70`); no extension is negotiated, so any is an error.
    var reservedBits: UInt8
    var opcode: WebSocketOpcode
    /// The four key bytes in wire order, loaded little-endian (byte 0 lowest); `nil`: not masked.
    var maskKey: UInt32?
    /// The payload as it came, masked.
    var data: ByteBuffer

    init(fin: Bool, reservedBits: UInt8, opcode: WebSocketOpcode, maskKey: UInt32?, data: ByteBuffer) {
        self.fin = fin
        self.reservedBits = reservedBits
        self.opcode = opcode
        self.maskKey = maskKey
        self.data = data
    }

    /// NIO's frame (from NIO's decoder, or a test) as the session handler takes it. No extension is
    /// negotiated, so there is no extension data.
    init(_ frame: WebSocketFrame) {
        let key = frame.maskKey.map { key in
            UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24
        }
        self.init(fin: frame.fin, reservedBits: frame.reservedBits.rawValue, opcode: frame.opcode, maskKey: key, data: frame.data)
    }

    var length: Int { data.readableBytes }

    /// NIO's frame of the same bytes, for a handler behind the codec that reads the pipeline.
    var webSocketFrame: WebSocketFrame {
        WebSocketFrame(
            fin: fin,
            rsv1: reservedBits & 0x40 != 0,
            rsv2: reservedBits & 0x20 != 0,
            rsv3: reservedBits & 0x10 != 0,
            opcode: opcode,
            maskKey: maskKey.map { key in withUnsafeBytes(of: key.littleEndian) { WebSocketMaskingKey($0)! } },
            data: data
        )
    }

    /// The payload with the client's mask removed, eight bytes at a time and copied in the same pass
    /// (the bytes it came in are the read buffer's, shared: they cannot be unmasked where they are).
    /// NIO's `unmaskedData` XORs byte by byte, after a copy. An all-zero mask (RFC 6455 allows it)
    /// costs nothing.
    var payload: ByteBuffer {
        guard let key = maskKey, key != 0 else { return data }
        let key64 = UInt64(key) | UInt64(key) << 32
        var unmasked = ByteBufferAllocator().buffer(capacity: data.readableBytes)
        data.withUnsafeReadableBytes { source in
            let count = source.count
            unmasked.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
                var index = 0
                while index + 8 <= count {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    target.storeBytes(of: word ^ key64, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                while index < count {
                    target[index] = source[index] ^ UInt8(truncatingIfNeeded: key >> (8 * UInt32(index % 4)))
                    index += 1
                }
                return count
            }
        }
        return unmasked
    }
}
