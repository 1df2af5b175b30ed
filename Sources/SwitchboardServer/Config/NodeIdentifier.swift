import SwitchboardBasics

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The default `server.node_id`: this host's name, a dash and six random hex digits, made once per process.
enum NodeIdentifier {
    /// Generated on first use and then fixed for the life of the process.
    static let generated: String = {
        let random = UInt32.random(in: 0..<0x100_0000)
        return hostname() + "-" + Hex.string(random, width: 6)
    }()

    /// Whether `id` is 1-128 characters of `[A-Za-z0-9._:-]`.
    static func isValid(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy(isAllowed)
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
            UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    /// The host name, limited to allowed characters and 64 bytes; `node` when unavailable.
    private static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "node" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }.filter(isAllowed).prefix(64)
        return bytes.isEmpty ? "node" : String(decoding: bytes, as: UTF8.self)
    }
}
