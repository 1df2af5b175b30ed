import SwitchboardBasics
import Testing

@Suite struct HexTests {
    @Test func bytes() {
        #expect(Hex.string([0x00, 0x0F, 0xA5, 0xFF]) == "000fa5ff")
        #expect(Hex.string([0x00, 0x0F, 0xA5, 0xFF], uppercase: true) == "000FA5FF")
        #expect(Hex.string([UInt8]()) == "")
        var bytes = Array("%".utf8)
        Hex.append(0x3A, uppercase: true, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "%3A")
    }

    @Test func paddedIntegers() {
        #expect(Hex.string(UInt64(0), width: 16) == "0000000000000000")
        #expect(Hex.string(UInt64.max, width: 16) == "ffffffffffffffff")
        #expect(Hex.string(UInt32(0xABC), width: 6) == "000abc")
        #expect(Hex.string(UInt32(0x1F), width: 4) == "001f")
        #expect(Hex.string(UInt32(0x12345), width: 4) == "12345")  // wider than asked: not cut
    }

    @Test func digitValues() {
        for value in UInt8(0)..<16 {
            #expect(Hex.value(ofDigit: Hex.digit(value)) == value)
            #expect(Hex.value(ofDigit: Hex.digit(value, uppercase: true)) == value)
        }
        for byte in Array("gG/:@`\u{0} ".utf8) {
            #expect(Hex.value(ofDigit: byte) == nil)
        }
    }
}
