/// Hexadecimal digits: the one place the package writes and reads them (percent escapes, JSON `\u`
/// escapes, script digests, generated ids).
package enum Hex {
    /// The digit of `value` (0…15): `0`…`9`, then `a`…`f`, or `A`…`F` when `uppercase`.
    package static func digit(_ value: UInt8, uppercase: Bool = false) -> UInt8 {
        precondition(value < 16, "a hex digit is 0...15")
        return value < 10 ? UInt8(ascii: "0") + value : (uppercase ? UInt8(ascii: "A") : UInt8(ascii: "a")) + value - 10
    }

    /// Appends the two digits of `byte`, high nibble first.
    package static func append(_ byte: UInt8, uppercase: Bool = false, to bytes: inout [UInt8]) {
        bytes.append(digit(byte >> 4, uppercase: uppercase))
        bytes.append(digit(byte & 0x0F, uppercase: uppercase))
    }

    /// `bytes` as two digits each (a digest's usual text form).
    package static func string(_ bytes: some Sequence<UInt8>, uppercase: Bool = false) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes { append(byte, uppercase: uppercase, to: &text) }
        return String(decoding: text, as: UTF8.self)
    }

    /// `value` in lowercase digits, zero-padded on the left to at least `width` digits.
    package static func string(_ value: some UnsignedInteger & FixedWidthInteger, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The value of the digit `byte` in either case, or `nil` when it is not a hex digit.
    package static func value(ofDigit byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
