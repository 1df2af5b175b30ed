import Testing

@testable import SwitchboardCore

@Suite struct JSONTests {
    // MARK: Round trips

    @Test(arguments: [
        #"null"#, #"true"#, #"false"#, #"0"#, #"-0"#, #"42"#, #"-7"#, #"3.14"#, #"1.50e3"#, #"1E+10"#,
        #"2e-5"#, #"-0.0e0"#, #""""#, #""hello""#, #"[]"#, #"{}"#, #"[1,2,[3,{}]]"#,
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
        #"{"z":1,"a":2,"m":3}"#,
        "\"café ☎ 😀\"",
        #""line\nbreak\ttab \"quoted\" back\\slash \u0001 \u001f""#,
    ])
    func compactTextRoundTripsExactly(text: String) throws {
        let value = try JSONValue(parsing: text)
        #expect(value.serialized() == text)
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }

    @Test func whitespaceIsDroppedOnReserialization() throws {
        let value = try JSONValue(parsing: " {\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\" : null } ")
        #expect(value.serialized() == #"{"a":[1,2],"b":null}"#)
    }

    @Test func keyOrderIsPreserved() throws {
        let text = #"{"type":"offer","zeta":1,"alpha":2,"callId":"c1","middle":3}"#
        let value = try JSONValue(parsing: text)
        #expect(value.objectValue?.keys == ["type", "zeta", "alpha", "callId", "middle"])
        #expect(value.serialized() == text)
    }

    @Test func unknownFieldsSurviveStamping() throws {
        let text = #"{"type":"offer","offer":{"type":"offer","sdp":"v=0\r\n"},"x-custom":{"n":[1,2.50]},"from":"mallory"}"#
        guard case .object(var object) = try JSONValue(parsing: text) else {
            Issue.record("not an object")
            return
        }
        object["from"] = "alice"
        object["fromName"] = "Alice"
        #expect(
            object.serialized()
                == #"{"type":"offer","offer":{"type":"offer","sdp":"v=0\r\n"},"x-custom":{"n":[1,2.50]},"from":"alice","fromName":"Alice"}"#
        )
    }

    @Test(arguments: ["1.50e3", "-0", "0.000", "1E+2", "123456789012345678901234567890", "1e-400"])
    func numberLexemesArePreserved(lexeme: String) throws {
        let value = try JSONValue(parsing: "[\(lexeme)]")
        #expect(value.arrayValue?.first == .number(lexeme))
        #expect(value.serialized() == "[\(lexeme)]")
    }

    @Test func parsesFromNonContiguousCollections() throws {
        let bytes = Array(#"{"a":"b\u00e9"}"#.utf8)
        let value = try JSONValue(parsing: bytes.lazy.map { $0 })
        #expect(value == ["a": "bé"])
        #expect(try JSONValue(parsing: bytes[...]) == value)
    }

    // MARK: Objects

    @Test func duplicateKeysLastWinsAtFirstPosition() throws {
        let value = try JSONValue(parsing: #"{"a":1,"b":2,"a":3}"#)
        #expect(value.serialized() == #"{"a":3,"b":2}"#)
        let built = JSONObject([("x", 1), ("y", 2), ("x", 9)])
        #expect(built.keys == ["x", "y"])
        #expect(built["x"] == 9)
    }

    @Test func duplicateKeysInLargeObjects() throws {
        var text = "{"
        for index in 0..<100 { text += "\"k\(index)\":\(index)," }
        text += #""k5":"last","k99":null}"#
        let object = try #require(try JSONValue(parsing: text).objectValue)
        #expect(object.count == 100)
        #expect(object["k5"] == "last")
        #expect(object["k99"] == .null)
        #expect(object.keys[5] == "k5")
    }

    @Test func objectSubscriptSetsReplacesAndRemoves() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["c"] = 3
        object["a"] = "one"
        #expect(object.keys == ["a", "b", "c"])
        object["b"] = nil
        #expect(object.keys == ["a", "c"])
        #expect(object.count == 2)
        #expect(object["b"] == nil)
        #expect(object.serialized() == #"{"a":"one","c":3}"#)
    }

    @Test func equalityIsOrderSensitiveAndExact() throws {
        #expect(try JSONValue(parsing: #"{"a":1,"b":2}"#) != JSONValue(parsing: #"{"b":2,"a":1}"#))
        #expect(try JSONValue(parsing: "1.0") != JSONValue(parsing: "1"))
        #expect(try JSONValue(parsing: #"{"a":[1,{"b":null}]}"#) == ["a": [1, ["b": nil]]])
    }

    // MARK: Accessors

    @Test func accessors() throws {
        let value = try JSONValue(parsing: #"{"s":"x","n":42,"f":2.5,"e":1e3,"b":true,"a":[1],"o":{},"z":null}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["n"]?.int64Value == 42)
        #expect(value["n"]?.intValue == 42)
        #expect(value["f"]?.int64Value == nil)
        #expect(value["f"]?.doubleValue == 2.5)
        #expect(value["e"]?.doubleValue == 1000)
        #expect(value["e"]?.numberLexeme == "1e3")
        #expect(value["b"]?.boolValue == true)
        #expect(value["a"]?.arrayValue == [1])
        #expect(value["o"]?.objectValue == JSONObject())
        #expect(value["z"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value["s"]?.intValue == nil)
        #expect(JSONValue.integer(Int64.min).serialized() == "-9223372036854775808")
        #expect(JSONValue.double(0.5) == .number("0.5"))
        #expect(JSONValue.double(.infinity) == nil)
    }

    // MARK: Strings and escapes

    @Test func escapesDecode() throws {
        let value = try JSONValue(parsing: #""\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\u0000""#)
        #expect(value == .string("\"\\/\u{08}\u{0C}\n\r\tAé€😀\u{0}"))
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try JSONValue(parsing: #""\uD834\uDD1E""#) == "𝄞")
        #expect(try JSONValue(parsing: #""a\uD83D\uDE00b""#) == "a😀b")
    }

    @Test func serializationEscapesControlCharacters() {
        let value = JSONValue.string("\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\"\\/\u{7F}é")
        #expect(value.serialized() == #""\u0000\u0001\b\t\n\f\r\u001f\"\\/"# + "\u{7F}é\"")
    }

    @Test func nonASCIIIsWrittenAsUTF8() {
        let value: JSONValue = ["名前": "用户离线 😀"]
        var bytes: [UInt8] = []
        value.write(into: &bytes)
        #expect(bytes == Array(#"{"名前":"用户离线 😀"}"#.utf8))
    }

    @Test func writeAppendsToExistingBytes() {
        var bytes = Array("prefix:".utf8)
        JSONValue.array([1, "two", nil]).write(into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"prefix:[1,"two",null]"#)
    }

    @Test func specialBytesAtEveryOffsetOfLongStrings() throws {
        let specials: [Character] = ["\"", "\\", "\n", "\u{1}", "\u{1F}", "é", "😀", "\u{7F}", " "]
        for length in [1, 7, 8, 9, 15, 16, 17, 40] {
            for offset in 0..<length {
                for special in specials {
                    var characters = Array(repeating: Character("a"), count: length)
                    characters[offset] = special
                    let string = String(characters)
                    let text = JSONValue.string(string).serialized()
                    #expect(try JSONValue(parsing: text) == .string(string), "\(length) \(offset) \(special)")
                }
            }
        }
    }

    @Test func invalidUTF8IsFoundAtEveryOffsetOfLongStrings() {
        for length in [8, 9, 16, 23, 40] {
            for offset in 0..<length {
                var bytes = Array(repeating: UInt8(ascii: "a"), count: length)
                bytes[offset] = 0xFF
                #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0x22] + bytes + [0x22]) }
                // Also after an escape (the slow path).
                #expect(throws: JSONParseError.self) { try JSONValue(parsing: Array(#""\n"#.utf8) + bytes + [0x22]) }
                var control = Array(repeating: UInt8(ascii: "b"), count: length)
                control[offset] = 0x0A
                #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0x22] + control + [0x22]) }
            }
        }
    }

    // MARK: Rejections

    @Test(arguments: [
        ("", "empty input"),
        ("   ", "only whitespace"),
        ("[1,2,]", "trailing comma in array"),
        (#"{"a":1,}"#, "trailing comma in object"),
        ("[,1]", "leading comma"),
        ("[1 2]", "missing comma"),
        (#"{"a" 1}"#, "missing colon"),
        ("{a:1}", "unquoted key"),
        ("{1:1}", "number key"),
        ("01", "leading zero"),
        ("-01", "negative leading zero"),
        ("00", "double zero"),
        ("1.", "missing fraction digits"),
        (".5", "missing integer part"),
        ("1e", "missing exponent digits"),
        ("1e+", "missing exponent digits after sign"),
        ("+1", "plus sign"),
        ("-", "lone minus"),
        ("0x10", "hex number"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("tru", "truncated true"),
        ("nul", "truncated null"),
        ("True", "capitalized literal"),
        ("\"a\u{0}b\"", "NUL in string"),
        ("\"a\nb\"", "newline in string"),
        ("\"a\tb\"", "tab in string"),
        ("\"\u{1F}\"", "unit separator in string"),
        (#""\x41""#, "invalid escape"),
        (#""\a""#, "bell escape"),
        (#""\'""#, "single quote escape"),
        (#""\u12""#, "short unicode escape"),
        (#""\u12G4""#, "bad hex digit"),
        (#""\uD800""#, "lone high surrogate"),
        (#""\uD800x""#, "high surrogate then text"),
        (#""\uD800\u0041""#, "high surrogate then non-surrogate"),
        (#""\uDC00""#, "lone low surrogate"),
        (#""\uDE00\uD83D""#, "reversed pair"),
        (#""abc"#, "unterminated string"),
        (#""abc\"#, "unterminated escape"),
        ("[1,2", "unterminated array"),
        (#"{"a":1"#, "unterminated object"),
        ("{", "open brace"),
        ("[1] x", "trailing garbage"),
        ("{}{}", "two values"),
        ("1 2", "two numbers"),
        ("nullx", "literal with garbage"),
        ("\u{FEFF}{}", "byte order mark"),
        ("'a'", "single quotes"),
        ("[1,]", "trailing comma after number"),
    ])
    func rejects(text: String, why: String) {
        #expect(throws: JSONParseError.self, "\(why)") { try JSONValue(parsing: text) }
    }

    @Test func rejectsInvalidUTF8() {
        let overlong: [UInt8] = [0x22, 0xC0, 0xAF, 0x22]
        let truncated: [UInt8] = [0x22, 0xE2, 0x82, 0x22]
        let loneContinuation: [UInt8] = [0x5B, 0x22, 0x5C, 0x6E, 0x80, 0x22, 0x5D]
        let surrogateEncoded: [UInt8] = [0x22, 0xED, 0xA0, 0x80, 0x22]
        for bytes in [overlong, truncated, loneContinuation, surrogateEncoded] {
            #expect(throws: JSONParseError.self) { try JSONValue(parsing: bytes) }
        }
    }

    @Test func errorsCarryOffsets() {
        #expect(throws: JSONParseError(message: "leading zero in number", offset: 6)) {
            try JSONValue(parsing: #"{"a":001}"#)
        }
        #expect(throws: JSONParseError(message: "unexpected characters after the JSON value", offset: 4)) {
            try JSONValue(parsing: "[1] x")
        }
        #expect(throws: JSONParseError(message: "unescaped control character in string", offset: 2)) {
            try JSONValue(parsing: "\"a\u{1}\"")
        }
        let error = JSONParseError(message: "oops", offset: 3)
        #expect(error.description == "oops at byte 3")
    }

    // MARK: Depth

    @Test func depthLimit() throws {
        let limit = JSONValue.maximumDepth
        #expect(limit == 64)
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(try JSONValue(parsing: deepest).serialized() == deepest)
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: tooDeep) }
        let deepObjects = String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deepObjects) }
        // Depth is nesting, not total containers.
        let wide = "[" + Array(repeating: "[[]]", count: 1000).joined(separator: ",") + "]"
        #expect(try JSONValue(parsing: wide).arrayValue?.count == 1000)
        // A huge unterminated nesting fails fast instead of overflowing the stack.
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: String(repeating: "[", count: 100_000)) }
    }

    // MARK: A realistic signal

    @Test func realisticOfferSignal() throws {
        let sdp = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
        let original: JSONValue = [
            "type": "offer", "callId": "c-123", "offer": ["type": "offer", "sdp": .string(sdp)],
            "extra": ["nested": [1, 2, 3], "flag": true],
        ]
        let text = original.serialized()
        let parsed = try JSONValue(parsing: text)
        #expect(parsed == original)
        #expect(parsed["offer"]?["sdp"]?.stringValue == sdp)
    }
}
