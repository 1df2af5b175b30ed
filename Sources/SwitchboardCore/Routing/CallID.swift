import SwitchboardBasics

/// Server-generated call ids: 128 random bits as 32 lowercase hex digits.
package enum CallID {
    package static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return Hex.string(high, width: 16) + Hex.string(low, width: 16)
    }
}
