import NIOCore
import SwiftProtobuf
import SwitchboardCore

/// A protobuf serialization target that is already a WebSocket frame's payload buffer.
///
/// The bytes are written once, straight into a `ByteBuffer` that keeps room in front for the frame
/// header, so NIO's frame encoder prepends the header in place instead of writing a second buffer.
struct FrameBytes: SwiftProtobufContiguousBytes {
    /// The most a server frame header takes (2 bytes + 8 length bytes; servers do not mask).
    static let headroom = 10
    private(set) var buffer: ByteBuffer

    init(repeating: UInt8, count: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: Self.headroom + count)
        buffer.moveWriterIndex(forwardBy: Self.headroom)
        buffer.moveReaderIndex(forwardBy: Self.headroom)
        buffer.writeRepeatingByte(repeating, count: count)
    }

    /// The bytes of `message`, behind the headroom.
    init(copying message: some EncodedChatMessage) {
        let count = message.byteCount
        buffer = ByteBufferAllocator().buffer(capacity: Self.headroom + count)
        buffer.moveWriterIndex(forwardBy: Self.headroom)
        buffer.moveReaderIndex(forwardBy: Self.headroom)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            message.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: bytes[..<count]))
            return count
        }
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        self.init(repeating: 0, count: 0)
        buffer.writeBytes(Array(sequence))
    }

    var count: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }
}
