/// `%XX` escapes (RFC 3986 §2.1) as the package's URLs and query strings use them: `redis://` and
/// `postgres://` credentials, the `token` query parameter.
///
/// `+` is an ordinary character here, not a space: none of those URLs use form encoding, and tokens
/// are base64url, which has no spaces.
package enum PercentEncoding {
    /// Why ``decode(_:)`` failed.
    package enum DecodingError: Error, Sendable, Hashable {
        /// A `%` not followed by two hex digits (`%`, `%4`, `%zz`).
        case malformedEscape
        /// The escapes decode to bytes that are not UTF-8 (`%FF`, half of a multi-byte character).
        case notUTF8
    }

    /// `text` with every `%XX` escape decoded. A malformed escape is reported even when the bytes
    /// before it are not UTF-8.
    package static func decode(_ text: some StringProtocol) throws(DecodingError) -> String {
        let utf8 = text.utf8
        guard utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Hex.value(ofDigit:)),
                let low = iterator.next().flatMap(Hex.value(ofDigit:))
            else { throw .malformedEscape }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw .notUTF8 }
        return decoded
    }

    /// `text` with every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) and outside
    /// `keeping` written as `%XX` (uppercase digits, as RFC 3986 recommends).
    package static func encode(_ text: String, keeping: Set<UInt8> = []) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                bytes.append(byte)
            case _ where keeping.contains(byte):
                bytes.append(byte)
            default:
                bytes.append(UInt8(ascii: "%"))
                Hex.append(byte, uppercase: true, to: &bytes)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
