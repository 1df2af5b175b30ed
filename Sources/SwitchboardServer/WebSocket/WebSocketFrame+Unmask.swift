import NIOCore
import NIOWebSocket

#if _endian(big)
#error("WebSocketFrame.payload assumes a little-endian CPU")
#endif

extension WebSocketFrame {
    /// The application data with the client's mask removed, eight bytes at a time.
    ///
    /// NIO's `unmaskedData` XORs byte by byte; on the relay path that showed up as the single most
    /// expensive function. An all-zero mask (allowed by RFC 6455) needs no work at all.
    var payload: ByteBuffer {
        guard let key = maskKey else { return data }
        let keyBytes = (UInt32(key[0]), UInt32(key[1]), UInt32(key[2]), UInt32(key[3]))
        let key32 = keyBytes.0 | keyBytes.1 << 8 | keyBytes.2 << 16 | keyBytes.3 << 24  // little-endian load order
        guard key32 != 0 else { return data }
        let offset = (extensionData?.readableBytes ?? 0) % 4
        // Rotate the key so that byte 0 of the payload meets key byte `offset`.
        let rotated = offset == 0 ? key32 : (key32 >> (8 * UInt32(offset))) | (key32 << (8 * UInt32(4 - offset)))
        let key64 = UInt64(rotated) | UInt64(rotated) << 32
        var payload = data
        payload.withUnsafeMutableReadableBytes { bytes in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: word ^ key64, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < count {
                bytes[index] ^= UInt8(truncatingIfNeeded: rotated >> (8 * UInt32(index % 4)))
                index += 1
            }
        }
        return payload
    }
}
