import NIOCore

/// One argument of a Redis command: text, an integer, or binary bytes.
///
/// Arguments are binary-safe: `\r\n` and `\0` inside a payload are sent as they are.
/// String and integer literals work directly: `["SET", "counter", 1]`.
package struct RESPArgument: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case string(String)
        case buffer(ByteBuffer)
        case bytes([UInt8])
    }

    let storage: Storage

    /// The UTF-8 bytes of `string`.
    package init(_ string: String) { storage = .string(string) }

    /// The readable bytes of `buffer`.
    package init(_ buffer: ByteBuffer) { storage = .buffer(buffer) }

    /// `bytes`, as they are.
    package init(_ bytes: [UInt8]) { storage = .bytes(bytes) }

    /// The decimal text of `value` (how Redis reads integer arguments).
    package init(_ value: some BinaryInteger) { storage = .string(String(value)) }

    /// The number of bytes this argument encodes to.
    var byteCount: Int {
        switch storage {
        case .string(let string): string.utf8.count
        case .buffer(let buffer): buffer.readableBytes
        case .bytes(let bytes): bytes.count
        }
    }

    /// Whether the argument is the command name `PUBLISH`, in any letter case.
    var isPublish: Bool {
        guard byteCount == 7 else { return false }
        switch storage {
        case .string(let string): return Self.isPublish(string.utf8)
        case .buffer(let buffer): return Self.isPublish(buffer.readableBytesView)
        case .bytes(let bytes): return Self.isPublish(bytes)
        }
    }

    private static func isPublish(_ bytes: some Sequence<UInt8>) -> Bool {
        // ASCII letters only: setting bit 5 lower-cases them.
        bytes.elementsEqual("publish".utf8) { ($0 | 0x20) == $1 }
    }

    /// Copies the argument's bytes to `destination` (which has room for ``byteCount`` bytes).
    func copyBytes(to destination: UnsafeMutableRawBufferPointer) {
        switch storage {
        case .string(let string):
            var string = string
            string.withUTF8 { destination.copyMemory(from: UnsafeRawBufferPointer($0)) }
        case .buffer(let buffer):
            buffer.withUnsafeReadableBytes { destination.copyMemory(from: $0) }
        case .bytes(let bytes):
            bytes.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
    }
}

extension RESPArgument: ExpressibleByStringLiteral {
    package init(stringLiteral value: String) { self.init(value) }
}

extension RESPArgument: ExpressibleByIntegerLiteral {
    package init(integerLiteral value: Int) { self.init(value) }
}
