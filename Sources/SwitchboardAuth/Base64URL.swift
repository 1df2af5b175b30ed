/// Base64url (RFC 4648 §5) as JWTs use it: written without padding, read with or without it.
enum Base64URL {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    /// `bytes` encoded without padding.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        let table = alphabet.utf8Start
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = iterator.next()
            output.append(table[Int(first >> 2)])
            output.append(table[Int((first & 0x03) << 4 | (second ?? 0) >> 4)])
            guard let second else { break }
            output.append(table[Int((second & 0x0F) << 2 | (third ?? 0) >> 6)])
            guard let third else { break }
            output.append(table[Int(third & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The bytes `text` encodes, or `nil` when it is not canonical base64url: characters outside
    /// the URL-safe alphabet (`+` and `/` included), a bad length or padding, or non-zero unused bits.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var sextets: [UInt8] = []
        sextets.reserveCapacity(text.count)
        var padding = 0
        for byte in text {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, let value = sextet(byte) else { return nil }
            sextets.append(value)
        }
        let remainder = sextets.count % 4
        guard remainder != 1, padding <= 2 else { return nil }
        if padding > 0, (sextets.count + padding) % 4 != 0 || remainder == 0 { return nil }

        var output: [UInt8] = []
        output.reserveCapacity(sextets.count * 3 / 4)
        var index = 0
        while index + 4 <= sextets.count {
            let a = sextets[index]
            let b = sextets[index + 1]
            let c = sextets[index + 2]
            let d = sextets[index + 3]
            output.append(a << 2 | b >> 4)
            output.append(b << 4 | c >> 2)
            output.append(c << 6 | d)
            index += 4
        }
        switch remainder {
        case 2:
            let a = sextets[index]
            let b = sextets[index + 1]
            guard b & 0x0F == 0 else { return nil }
            output.append(a << 2 | b >> 4)
        case 3:
            let a = sextets[index]
            let b = sextets[index + 1]
            let c = sextets[index + 2]
            guard c & 0x03 == 0 else { return nil }
            output.append(a << 2 | b >> 4)
            output.append(b << 4 | c >> 2)
        default:
            break
        }
        return output
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
