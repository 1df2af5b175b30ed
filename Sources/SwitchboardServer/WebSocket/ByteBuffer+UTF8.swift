import NIOCore

extension ByteBuffer {
    /// Whether the readable bytes are valid UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
    var readableBytesAreValidUTF8: Bool {
        self.withUnsafeReadableBytes { raw in
            raw.withMemoryRebound(to: UInt8.self) { bytes in
                // The standard library's validator is compiled optimised, even in debug builds.
                String(validating: bytes, as: UTF8.self) != nil
            }
        }
    }
}
