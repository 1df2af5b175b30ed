import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as 128 bits. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
/// dual-stack listener reports for an IPv4 peer) is the IPv4 address: the two spellings compare equal.
package struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address family.
    package enum Family: Sendable, Hashable {
        case v4
        case v6
    }

    /// `.v4` or `.v6`.
    package let family: Family
    /// The upper 64 bits (IPv6); 0 for IPv4.
    let high: UInt64
    /// The lower 64 bits (IPv6), or the IPv4 address in the lower 32 bits.
    let low: UInt64

    init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    init(v6 high: UInt64, _ low: UInt64) {
        if high == 0, low >> 32 == 0xFFFF {
            self.init(v4: UInt32(truncatingIfNeeded: low))
        } else {
            self.init(rawV6: high, low)
        }
    }

    /// Parses `1.2.3.4` or any IPv6 text form (`::1`, `2001:db8::7`, `::ffff:1.2.3.4`); `nil` for
    /// anything else (host names, ports, brackets, zone ids, surrounding whitespace).
    package init?(_ text: some StringProtocol) {
        let text = String(text)
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(v4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self.init(v6Bytes: v6)
    }

    /// The IP address of an `AF_INET` / `AF_INET6` socket address; `nil` for a Unix socket.
    package init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4): self.init(v4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6): self.init(v6Bytes: v6.address.sin6_addr)
        case .unixDomainSocket: return nil
        }
    }

    private init(v6Bytes address: in6_addr) {
        let bytes = withUnsafeBytes(of: address) { Array($0) }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
        self.init(v6: high, low)
    }

    /// The number of bits in an address of this family (32 or 128).
    var bitWidth: Int { family == .v4 ? 32 : 128 }

    /// This address with every bit after the first `prefixLength` cleared.
    func masked(toPrefix prefixLength: Int) -> IPAddress {
        switch family {
        case .v4:
            let keep = max(0, min(32, prefixLength))
            let mask: UInt32 = keep == 0 ? 0 : ~UInt32(0) << (32 - keep)
            return IPAddress(v4: UInt32(truncatingIfNeeded: low) & mask)
        case .v6:
            let keep = max(0, min(128, prefixLength))
            let highMask: UInt64 = keep >= 64 ? ~0 : (keep == 0 ? 0 : ~UInt64(0) << (64 - keep))
            let lowMask: UInt64 = keep <= 64 ? 0 : (keep == 128 ? ~0 : ~UInt64(0) << (128 - keep))
            return IPAddress(rawV6: high & highMask, low & lowMask)
        }
    }

    /// An IPv6 address exactly as given (no IPv4-mapped normalisation: a mask result stays IPv6).
    private init(rawV6 high: UInt64, _ low: UInt64) {
        family = .v6
        self.high = high
        self.low = low
    }

    /// `1.2.3.4`, or the RFC 5952 form of an IPv6 address (`2001:db8::1`).
    package var description: String {
        switch family {
        case .v4:
            let value = UInt32(truncatingIfNeeded: low)
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        case .v6:
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { raw in
                for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i))) }
                for i in 0..<8 { raw[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i))) }
            }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}

/// An IP network written as CIDR (`10.0.0.0/8`, `fd00::/8`), or a single address (`/32`, `/128`).
package struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The network's first address (host bits cleared).
    package let address: IPAddress
    /// How many leading bits are the network.
    package let prefixLength: Int

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; `nil` when either part is invalid or the prefix is
    /// longer than the address. Host bits after the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        // An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps.
        let mapped = parts[0].contains(":") && address.family == .v4
        var prefixLength = address.bitWidth
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let value = Int(digits), value <= (mapped ? 128 : address.bitWidth)
            else { return nil }
            if mapped {
                guard value >= 96 else { return nil }
                prefixLength = value - 96
            } else {
                prefixLength = value
            }
        }
        self.address = address.masked(toPrefix: prefixLength)
        self.prefixLength = prefixLength
    }

    /// Whether `candidate` is in this network (never across families).
    package func contains(_ candidate: IPAddress) -> Bool {
        candidate.family == address.family && candidate.masked(toPrefix: prefixLength) == address
    }

    /// `ADDRESS/PREFIX`.
    package var description: String { "\(address)/\(prefixLength)" }
}
