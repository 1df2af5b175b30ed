extension JSONValue {
    /// The deepest nesting of arrays and objects accepted; one level more is an error.
    package static let maximumDepth = 64

    /// Parses one JSON text (RFC 8259, strict) from UTF-8 bytes.
    ///
    /// Rejects trailing commas, leading zeros, unescaped control characters in strings, invalid
    /// escapes, lone surrogates, invalid UTF-8, anything after the value, and nesting deeper than
    /// ``maximumDepth``. Any value is accepted at the top level, not only objects and arrays.
    /// A contiguous collection (`[UInt8]`, `ByteBuffer` views, `String.UTF8View` of a native
    /// string) is parsed in place.
    package init(parsing bytes: some Collection<UInt8>) throws(JSONParseError) {
        let contiguous = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try JSONParser.parse(buffer) }
        }
        let result =
            contiguous
            ?? Array(bytes).withUnsafeBufferPointer { buffer in
                Result { () throws(JSONParseError) -> JSONValue in try JSONParser.parse(buffer) }
            }
        self = try result.get()
    }

    /// Parses one JSON text from a string; with the same rules as parsing bytes.
    package init(parsing text: String) throws(JSONParseError) {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try JSONParser.parse(buffer) }
        }
        self = try result.get()
    }

    /// Parses `text` as ``init(parsing:)-(String)`` does, and answers where each member of a top-level
    /// object lies in its UTF-8, in order, with its key as parsed (none for any other value).
    package static func parsingMembers(of text: String) throws(JSONParseError) -> (value: JSONValue, members: [JSONMember]) {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> (JSONValue, [JSONMember]) in try JSONParser.parseMembers(buffer) }
        }
        return try result.get()
    }
}

/// One member of a JSON object as it lies in the text: its key (unescaped) and its bytes, from the
/// key's opening quote to the value's last byte.
package struct JSONMember: Sendable, Equatable {
    package let key: String
    package let span: Range<Int>
}

/// A recursive-descent parser over a contiguous UTF-8 buffer.
///
/// Strings without escapes are created straight from the input slice; strings with escapes are
/// assembled in one reused scratch buffer, so parsing allocates only for the values it produces.
internal struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    private var scratch: [UInt8] = []
    /// The top-level object's members, when asked for (``parseMembers(_:)``).
    private var members: [JSONMember]?

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes)
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw parser.error("unexpected characters after the JSON value")
        }
        return value
    }

    static func parseMembers(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> (JSONValue, [JSONMember]) {
        var parser = JSONParser(bytes)
        parser.members = []
        parser.members!.reserveCapacity(8)
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw parser.error("unexpected characters after the JSON value")
        }
        return (value, parser.members ?? [])
    }

    // MARK: Helpers

    private func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(message: message, offset: offset ?? index)
    }

    private var atEnd: Bool { index >= bytes.count }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    // MARK: Values

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard !atEnd else { throw error("unexpected end of input, expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error("unexpected character, expected a value")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        guard bytes.count - index >= count else { throw error("invalid literal") }
        for offset in 0..<count where bytes[index + offset] != start[offset] {
            throw error("invalid literal", at: index + offset)
        }
        index += count
    }

    private mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        guard depth <= JSONValue.maximumDepth else {
            throw error("nesting deeper than \(JSONValue.maximumDepth) levels")
        }
        index += 1
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        skipWhitespace()
        if !atEnd, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject())
        }
        var builder = JSONObjectBuilder()
        while true {
            skipWhitespace()
            guard !atEnd, bytes[index] == UInt8(ascii: "\"") else {
                throw error(atEnd ? "unterminated object" : "expected a string key")
            }
            let memberStart = index
            let key = try parseString()
            skipWhitespace()
            guard !atEnd, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after object key")
            }
            index += 1
            let value = try parseValue()
            if depth == 1, members != nil { members!.append(JSONMember(key: key, span: memberStart..<index)) }
            builder.append(key: key, value: value)
            skipWhitespace()
            guard !atEnd else { throw error("unterminated object") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(builder.build())
            default:
                throw error("expected ',' or '}' in object")
            }
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        skipWhitespace()
        if !atEnd, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array([])
        }
        var elements: [JSONValue] = []
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard !atEnd else { throw error("unterminated array") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(elements)
            default:
                throw error("expected ',' or ']' in array")
            }
        }
    }

    // MARK: Numbers

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as its lexeme.
    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard !atEnd, Self.isDigit(bytes[index]) else { throw error("expected a digit") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if !atEnd, Self.isDigit(bytes[index]) { throw error("leading zero in number") }
        } else {
            skipDigits()
        }
        if !atEnd, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard !atEnd, Self.isDigit(bytes[index]) else {
                throw error("expected a digit after the decimal point")
            }
            skipDigits()
        }
        if !atEnd, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if !atEnd, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard !atEnd, Self.isDigit(bytes[index]) else { throw error("expected a digit in the exponent") }
            skipDigits()
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    private mutating func skipDigits() {
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote; leaves `index` after the closing quote.
    private mutating func parseString() throws(JSONParseError) -> String {
        let quote = index
        index += 1
        let start = index
        // Raw non-ASCII bytes must be validated; escapes always decode to valid UTF-8.
        var nonASCII = false
        index = JSONByteScan.plainRunEnd(in: bytes, from: index, nonASCII: &nonASCII)
        guard !atEnd else { throw error("unterminated string", at: quote) }
        if bytes[index] == UInt8(ascii: "\"") {
            // Fast path: no escapes, built straight from the input.
            let string = try makeString(UnsafeBufferPointer(rebasing: bytes[start..<index]), validating: nonASCII, quote: quote)
            index += 1
            return string
        }
        // Slow path: copy runs and decoded escapes into the scratch buffer.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                let string = try scratch.withUnsafeBufferPointer { buffer throws(JSONParseError) in
                    try makeString(buffer, validating: nonASCII, quote: quote)
                }
                index += 1
                return string
            case UInt8(ascii: "\\"):
                try parseEscape()
            case ..<0x20:
                throw error("unescaped control character in string")
            default:
                let runStart = index
                index = JSONByteScan.plainRunEnd(in: bytes, from: index, nonASCII: &nonASCII)
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            }
        }
        throw error("unterminated string", at: quote)
    }

    private func makeString(
        _ utf8: UnsafeBufferPointer<UInt8>,
        validating: Bool,
        quote: Int
    ) throws(JSONParseError) -> String {
        guard validating else { return String(decoding: utf8, as: UTF8.self) }
        guard let string = String(validating: utf8, as: UTF8.self) else {
            throw error("invalid UTF-8 in string", at: quote)
        }
        return string
    }

    /// Decodes the escape at `index` (a backslash) into the scratch buffer.
    private mutating func parseEscape() throws(JSONParseError) {
        let escapeStart = index
        index += 1
        guard !atEnd else { throw error("unterminated string") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): scratch.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): scratch.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): scratch.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try parseHex4()
            var scalar = UInt32(unit)
            switch unit {
            case 0xD800...0xDBFF:
                guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                else {
                    throw error("lone high surrogate in \\u escape", at: escapeStart)
                }
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate not followed by a low surrogate", at: escapeStart)
                }
                scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            case 0xDC00...0xDFFF:
                throw error("lone low surrogate in \\u escape", at: escapeStart)
            default:
                break
            }
            appendUTF8(scalar)
        default:
            throw error("invalid escape sequence", at: escapeStart)
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt16 {
        guard bytes.count - index >= 4 else { throw error("incomplete \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case ..<0x80:
            scratch.append(UInt8(scalar))
        case ..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
