/// Finds where a run of string bytes that need no special handling ends, eight bytes at a time.
internal enum JSONByteScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// The index of the first byte at or after `start` that is `"`, `\` or below 0x20 (`buffer.count`
    /// when there is none). Sets `nonASCII` when a byte of 0x80 or above was passed over.
    @inline(__always)
    static func plainRunEnd(in buffer: UnsafeBufferPointer<UInt8>, from start: Int, nonASCII: inout Bool) -> Int {
        var index = start
        let count = buffer.count
        if let base = buffer.baseAddress, count - index >= 8 {
            let raw = UnsafeRawPointer(base)
            var seen: UInt64 = 0
            while count - index >= 8 {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                let quote = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
                let backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
                // "Has a zero byte" and "has a byte below 0x20" (exact for the word as a whole).
                let special =
                    ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
                if special & highBits != 0 { break }
                seen |= word
                index += 8
            }
            if seen & highBits != 0 { nonASCII = true }
        }
        while index < count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            if byte >= 0x80 { nonASCII = true }
            index += 1
        }
        return index
    }
}
