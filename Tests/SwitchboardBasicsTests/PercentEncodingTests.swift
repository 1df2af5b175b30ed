import SwitchboardBasics
import Testing

@Suite struct PercentEncodingTests {
    @Test func decodesEscapesInEitherCase() throws {
        #expect(try PercentEncoding.decode("s%40cr%3At") == "s@cr:t")
        #expect(try PercentEncoding.decode("%2f%2F") == "//")
        #expect(try PercentEncoding.decode("100%25") == "100%")
        #expect(try PercentEncoding.decode("") == "")
        #expect(try PercentEncoding.decode("plain-text_~.") == "plain-text_~.")
    }

    @Test func plusStaysPlus() throws {
        #expect(try PercentEncoding.decode("a+b") == "a+b")
        #expect(try PercentEncoding.decode("a%2Bb") == "a+b")
        #expect(try PercentEncoding.decode("%20+") == " +")
    }

    @Test func decodesUTF8() throws {
        #expect(try PercentEncoding.decode("caf%C3%A9") == "café")
        #expect(try PercentEncoding.decode("%F0%9F%93%9E") == "📞")
        #expect(try PercentEncoding.decode("é%20📞") == "é 📞")  // raw non-ASCII passes through
    }

    @Test(arguments: ["%", "%4", "a%zz", "%g0", "%0g", "%%41", "abc%"])
    func rejectsMalformedEscapes(text: String) {
        #expect(throws: PercentEncoding.DecodingError.malformedEscape) { try PercentEncoding.decode(text) }
    }

    @Test(arguments: ["%FF", "%C3", "%C3%28", "%ED%A0%80", "%F0%9F%93"])
    func rejectsBytesThatAreNotUTF8(text: String) {
        #expect(throws: PercentEncoding.DecodingError.notUTF8) { try PercentEncoding.decode(text) }
    }

    @Test func malformedEscapeWinsOverBadUTF8() {
        #expect(throws: PercentEncoding.DecodingError.malformedEscape) { try PercentEncoding.decode("%FF%") }
    }

    @Test func decodesSubstrings() throws {
        let text = "user:p%40ss"
        let password = text[text.index(after: text.firstIndex(of: ":")!)...]
        #expect(try PercentEncoding.decode(password) == "p@ss")
    }

    @Test func encodesAllButUnreserved() {
        #expect(PercentEncoding.encode("p@ss:w/rd") == "p%40ss%3Aw%2Frd")
        #expect(PercentEncoding.encode("a+b c%") == "a%2Bb%20c%25")
        #expect(PercentEncoding.encode("AZaz09-._~") == "AZaz09-._~")
        #expect(PercentEncoding.encode("café") == "caf%C3%A9")
        #expect(PercentEncoding.encode("/var/run", keeping: [UInt8(ascii: "/")]) == "/var/run")
    }

    @Test(arguments: ["", "p@ss:w/rd", "100%", "café 📞", "+&=?#[]"])
    func encodeThenDecodeRoundTrips(text: String) throws {
        #expect(try PercentEncoding.decode(PercentEncoding.encode(text)) == text)
    }
}
