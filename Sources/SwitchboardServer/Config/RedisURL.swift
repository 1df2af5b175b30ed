/// Builds `redis.url` from the seed-compatible `redis.host` / `port` / `password` / `db` keys.
enum RedisURL {
    /// `redis://[:password@]host:port[/db]`, with the password percent-encoded and an IPv6 host bracketed.
    static func build(host: String, port: Int, password: String?, db: Int?) -> String {
        var url = "redis://"
        if let password, !password.isEmpty {
            url += ":" + percentEncoded(password) + "@"
        }
        url += host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        url += ":\(port)"
        if let db { url += "/\(db)" }
        return url
    }

    /// `text` with everything but RFC 3986 unreserved characters percent-encoded.
    static func percentEncoded(_ text: String) -> String {
        let hex: [Character] = Array("0123456789ABCDEF")
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result.append("%")
                result.append(hex[Int(byte >> 4)])
                result.append(hex[Int(byte & 0x0F)])
            }
        }
        return result
    }
}
