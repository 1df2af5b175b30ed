import NIOCore
import SwiftProtobuf
import SwitchboardCore

/// A protobuf serialization target that is already a WebSocket frame's payload buffer.
///
/// The bytes are written once, straight into a `ByteBuffer` that keeps room in front for the frame
/// header, so the frame codec prepends the header in place instead of writing a second buffer.
struct FrameBytes: SwiftProtobufContiguousBytes {
    /// The most a server frame header takes (2 bytes + 8 length bytes; servers do not mask).
    static let headroom = 10
    private(set) var buffer: ByteBuffer

    init(repeating: UInt8, count: Int) {
        buffer = Self.empty(room: count)
        buffer.writeRepeatingByte(repeating, count: count)
    }

    /// The bytes of `message`, behind the headroom.
    init(copying message: some EncodedChatMessage) {
        let count = message.byteCount
        buffer = Self.empty(room: count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            message.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: bytes[..<count]))
            return count
        }
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        self.init(repeating: 0, count: 0)
        buffer.writeBytes(Array(sequence))
    }

    /// A buffer with the headroom in front and room for `count` bytes behind it, none written.
    private static func empty(room count: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: headroom + count)
        buffer.moveWriterIndex(forwardBy: headroom)
        buffer.moveReaderIndex(forwardBy: headroom)
        return buffer
    }

    var count: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }
}
