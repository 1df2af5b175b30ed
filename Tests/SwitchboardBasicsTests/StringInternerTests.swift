import Testing

@testable import SwitchboardBasics

@Suite struct StringInternerTests {
    /// The user agent every browser of one version sends.
    private static let agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

    /// Equal strings come back as one copy: the second shares the first's storage.
    @Test func equalStringsShareOneCopy() {
        let interner = StringInterner()
        let (copy1, copy2) = (copy(Self.agent), copy(Self.agent))
        #expect(storage(of: copy1) != storage(of: copy2), "two copies to begin with")
        let first = interner.intern(copy1)
        let second = interner.intern(copy2)
        #expect(first == second)
        #expect(storage(of: first) == storage(of: second), "one copy")
        #expect(interner.count == 1)
    }

    /// Inline strings and strings over the length limit are not kept.
    @Test func shortAndLongStringsAreNotKept() {
        let interner = StringInterner(maxLength: 64)
        #expect(interner.intern("curl/8.5.0") == "curl/8.5.0")
        let long = String(repeating: "x", count: 65)
        #expect(interner.intern(long) == long)
        #expect(interner.count == 0)
    }

    /// A client sending a new string each time cannot grow it: past `capacity` it starts over.
    @Test func itHoldsAtMostItsCapacity() {
        let interner = StringInterner(capacity: 8)
        for index in 0..<100 { _ = interner.intern("agent number \(index) of many") }
        #expect(interner.count <= 8)
        #expect(interner.count > 0)
    }

    private func copy(_ string: String) -> String { String(decoding: Array(string.utf8), as: UTF8.self) }

    private func storage(of string: String) -> UInt? {
        var string = string
        return string.withUTF8 { UInt(bitPattern: $0.baseAddress) }
    }
}
