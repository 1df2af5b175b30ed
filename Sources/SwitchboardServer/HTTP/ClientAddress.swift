import NIOCore
import NIOHTTP1

/// `server.trusted_proxies`: the proxies whose `X-Forwarded-For` is believed. Empty (the default)
/// trusts nobody: the client is always the TCP peer.
package struct TrustedProxies: Sendable, Equatable, CustomStringConvertible {
    /// The trusted networks, in the order configured.
    package var networks: [IPNetwork]

    /// Trusts the given networks.
    package init(_ networks: [IPNetwork] = []) {
        self.networks = networks
    }

    /// Whether `address` is one of the trusted proxies.
    package func contains(_ address: IPAddress) -> Bool {
        networks.contains { $0.contains(address) }
    }

    /// Whether no proxy is trusted.
    package var isEmpty: Bool { networks.isEmpty }

    /// The networks, comma-separated (as the environment variable writes them).
    package var description: String { networks.map(\.description).joined(separator: ",") }
}

/// Who the client of a connection is, for logs (`metadata.ip`) and per-address limits.
///
/// `X-Forwarded-For` is believed only when the TCP peer is a trusted proxy, and then only as far as
/// trusted proxies vouch for it: the entries are read from the right (each proxy appends the address
/// it received the request from), skipping trusted proxies, and the first untrusted one is the
/// client. Everything left of it was written by the client or by hops nobody trusts, so taking the
/// first entry would let any client choose its logged address. When every entry is trusted the
/// left-most one is the client; an entry that is not an IP address ends the walk at the last hop a
/// trusted proxy named.
enum ClientAddress {
    /// The client of a request that arrived from `peer` with the `X-Forwarded-For` header lines
    /// `forwardedFor` (in the order received); `nil` only when `peer` is `nil` (a Unix socket).
    static func resolve(peer: IPAddress?, forwardedFor: [String], trusted: TrustedProxies) -> IPAddress? {
        guard var client = peer, trusted.contains(client) else { return peer }
        for line in forwardedFor.reversed() {
            for entry in line.split(separator: ",", omittingEmptySubsequences: false).reversed() {
                guard let hop = IPAddress(entry.trimmingCharacters(in: " \t")) else { return client }
                client = hop
                if !trusted.contains(hop) { return hop }
            }
        }
        return client
    }

    /// ``resolve(peer:forwardedFor:trusted:)`` as text for the call event log; `""` without an IP peer.
    static func text(peer: SocketAddress?, headers: HTTPHeaders, trusted: TrustedProxies) -> String {
        let forwardedFor = trusted.isEmpty ? [] : headers[canonicalForm: "X-Forwarded-For"].map(String.init)
        return resolve(peer: peer.flatMap(IPAddress.init), forwardedFor: forwardedFor, trusted: trusted)?.description ?? ""
    }

    /// The client address of the request `headers` on `channel`, with the trusted proxies of the
    /// listener that accepted it (its ``PendingConnectionHandler``, which is in the pipeline until
    /// the upgrade response is written: call this before that, e.g. from `shouldUpgrade`). On a
    /// channel without one (unit tests), nobody is trusted.
    static func of(_ headers: HTTPHeaders, channel: any Channel) -> String {
        let trusted =
            (try? channel.pipeline.syncOperations.handler(type: PendingConnectionHandler.self))?.trustedProxies
            ?? TrustedProxies()
        return text(peer: channel.remoteAddress, headers: headers, trusted: trusted)
    }

    /// What the per-address pending-connection limit counts a connection from `peer` under: its IPv4
    /// address, or its IPv6 /64 (one subscriber's network: a host can take any address in it). `nil`
    /// for a trusted proxy, which carries many clients and counts only towards the total, and for a
    /// Unix socket.
    static func limitKey(peer: SocketAddress?, trusted: TrustedProxies) -> IPAddress? {
        guard let address = peer.flatMap(IPAddress.init), !trusted.contains(address) else { return nil }
        return address.family == .v6 ? address.masked(toPrefix: 64) : address
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        let isTrimmed = { (c: Character) in set.contains(c) }
        guard let first = firstIndex(where: { !isTrimmed($0) }), let last = lastIndex(where: { !isTrimmed($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
