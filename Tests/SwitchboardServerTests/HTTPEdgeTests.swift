import NIOCore
import Testing

@testable import SwitchboardServer

/// The pure parts of the HTTP edge (PROTOCOL.md §9): addresses and networks, whose
/// `X-Forwarded-For` is believed, and the pending-connection bookkeeping with its eviction order.
@Suite struct HTTPEdgeTests {
    // MARK: Addresses and networks

    func ip(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { preconditionFailure("test address \(text) does not parse") }
        return address
    }

    func net(_ text: String) -> IPNetwork {
        guard let network = IPNetwork(text) else { preconditionFailure("test network \(text) does not parse") }
        return network
    }

    @Test(arguments: [
        ("192.0.2.7", "192.0.2.7"), ("0.0.0.0", "0.0.0.0"), ("::1", "::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"), ("fe80::1:2", "fe80::1:2"),
    ])
    func addressesParseToTheirCanonicalText(text: String, canonical: String) throws {
        #expect(IPAddress(text)?.description == canonical)
    }

    @Test(arguments: [
        "", " 192.0.2.7", "192.0.2.7 ", "192.0.2", "192.0.2.256", "01.2.3.4x", "example.com", "[::1]", "192.0.2.7:80", "::1%eth0",
        "1::2::3", "unknown",
    ])
    func nonAddressesAreRejected(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func mappedIPv4EqualsIPv4() throws {
        #expect(IPAddress("::ffff:10.1.2.3") == IPAddress("10.1.2.3"))
        #expect(IPAddress("::ffff:10.1.2.3")?.family == .v4)
        #expect(IPAddress("::10.1.2.3")?.family == .v6)  // IPv4-compatible (deprecated): not the same host
    }

    @Test func socketAddressesGiveTheirIP() throws {
        #expect(IPAddress(try SocketAddress(ipAddress: "127.0.0.3", port: 4000)) == IPAddress("127.0.0.3"))
        #expect(IPAddress(try SocketAddress(ipAddress: "2001:db8::9", port: 4000)) == IPAddress("2001:db8::9"))
        #expect(IPAddress(try SocketAddress(ipAddress: "::ffff:127.0.0.3", port: 4000)) == IPAddress("127.0.0.3"))
        #expect(IPAddress(try SocketAddress(unixDomainSocketPath: "/tmp/x.sock")) == nil)
    }

    @Test func networksContainTheirAddressesOnly() throws {
        let ten = net("10.0.0.0/8")
        #expect(ten.contains(ip("10.255.0.1")))
        #expect(!ten.contains(ip("11.0.0.1")))
        #expect(!ten.contains(ip("::ffff:11.0.0.1")))
        #expect(ten.contains(ip("::ffff:10.0.0.1")))

        let host = net("192.0.2.7")
        #expect(host.prefixLength == 32 && host.contains(ip("192.0.2.7")))
        #expect(!host.contains(ip("192.0.2.8")))

        let odd = net("172.16.0.0/12")
        #expect(odd.contains(ip("172.31.255.255")) && !odd.contains(ip("172.32.0.0")))

        let ula = net("fd00::/8")
        #expect(ula.contains(ip("fdab::1")) && !ula.contains(ip("fe00::1")))
        #expect(!ula.contains(ip("10.0.0.1")))  // never across families

        #expect(net("0.0.0.0/0").contains(ip("203.0.113.1")))
        #expect(net("::/0").contains(ip("2001:db8::1")))
        #expect(!(net("::/0").contains(ip("203.0.113.1"))))
        #expect(net("2001:db8:1:2::/64").contains(ip("2001:db8:1:2:ffff::1")))
        #expect(!(net("2001:db8:1:2::/64").contains(ip("2001:db8:1:3::1"))))
        #expect(net("2001:db8::/127").contains(ip("2001:db8::1")))

        // Host bits are dropped; a mapped network is the IPv4 one.
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(IPNetwork("::ffff:10.0.0.0/104")?.description == "10.0.0.0/8")
    }

    @Test(arguments: [
        "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "/8", "10.0.0.0/ 8", "::ffff:10.0.0.0/95", "nginx",
    ])
    func badNetworksAreRejected(text: String) {
        #expect(IPNetwork(text) == nil)
    }

    // MARK: X-Forwarded-For

    let proxies = TrustedProxies([IPNetwork("127.0.0.1")!, IPNetwork("10.0.0.0/8")!])

    func resolve(_ peer: String, _ forwardedFor: [String], trusted: TrustedProxies? = nil) -> String? {
        ClientAddress.resolve(peer: IPAddress(peer), forwardedFor: forwardedFor, trusted: trusted ?? proxies)?.description
    }

    @Test func forwardedForIsIgnoredFromAnUntrustedPeer() {
        #expect(resolve("198.51.100.4", ["203.0.113.9"]) == "198.51.100.4")
        #expect(resolve("127.0.0.1", ["203.0.113.9"], trusted: TrustedProxies()) == "127.0.0.1")  // nobody trusted by default
    }

    @Test func forwardedForFromATrustedPeerNamesTheRightmostUntrustedHop() {
        #expect(resolve("127.0.0.1", ["203.0.113.9"]) == "203.0.113.9")
        // A client-written entry to the left of what the proxy appended is not believed.
        #expect(resolve("127.0.0.1", ["198.51.100.66, 203.0.113.9"]) == "203.0.113.9")
        // Trusted hops are walked over, across header lines.
        #expect(resolve("127.0.0.1", ["198.51.100.66, 203.0.113.9, 10.1.1.1", " 10.2.2.2 "]) == "203.0.113.9")
        // Everyone trusted: the left-most.
        #expect(resolve("127.0.0.1", ["10.3.3.3,10.2.2.2"]) == "10.3.3.3")
        // Not an address: the last hop a trusted proxy named.
        #expect(resolve("127.0.0.1", ["203.0.113.9, garbage, 10.2.2.2"]) == "10.2.2.2")
        #expect(resolve("127.0.0.1", ["unknown"]) == "127.0.0.1")
        #expect(resolve("127.0.0.1", ["203.0.113.9,"]) == "127.0.0.1")
        #expect(resolve("127.0.0.1", []) == "127.0.0.1")
        // Canonical text, whatever the spelling.
        #expect(resolve("127.0.0.1", ["2001:DB8::0:1"]) == "2001:db8::1")
        #expect(resolve("::ffff:127.0.0.1", ["::ffff:203.0.113.9"]) == "203.0.113.9")
    }

    @Test func limitKeysAreAddressesOrIPv6Slash64s() throws {
        let trusted = TrustedProxies([IPNetwork("127.0.0.1")!])
        #expect(
            ClientAddress.limitKey(peer: try SocketAddress(ipAddress: "127.0.0.2", port: 1), trusted: trusted)
                == IPAddress("127.0.0.2")
        )
        #expect(ClientAddress.limitKey(peer: try SocketAddress(ipAddress: "127.0.0.1", port: 1), trusted: trusted) == nil)
        let a = ClientAddress.limitKey(peer: try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1), trusted: trusted)
        let b = ClientAddress.limitKey(
            peer: try SocketAddress(ipAddress: "2001:db8:1:2:aaaa:bbbb:cccc:dddd", port: 1),
            trusted: trusted
        )
        let c = ClientAddress.limitKey(peer: try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1), trusted: trusted)
        #expect(a != nil && a == b && a != c)
        #expect(ClientAddress.limitKey(peer: nil, trusted: trusted) == nil)
    }

    // MARK: Pending connections

    @Test func idleOrderKeepsAppendOrderThroughRemovals() {
        var order = IdleOrder<Int>()
        for i in 1...5 { order.append(i) }
        order.remove(3)
        order.remove(1)
        order.append(2)  // moves to the end
        order.remove(42)
        #expect(order.ordered == [4, 5, 2] && order.oldest == 4 && order.count == 3)
        order.remove(4)
        order.remove(5)
        order.remove(2)
        #expect(order.ordered == [] && order.oldest == nil && order.count == 0)
        order.append(9)
        #expect(order.ordered == [9] && order.oldest == 9)
    }

    typealias Table = PendingConnectionTable<String, String>

    /// A table behind a reference, so that `#expect` / `#require` can call its mutating methods.
    final class Box {
        var table: Table
        init(_ limits: PendingConnectionLimits) { table = Table(limits: limits) }

        /// `(id, evicted)` when admitted, `nil` when refused.
        func admit(_ connection: String, key: String?) -> (Table.ID, [String])? {
            if case .admitted(let id, let evicted) = table.admit(connection, key: key) { return (id, evicted) }
            return nil
        }
    }

    @Test func perAddressLimitEvictsThatAddressesOldestIdle() throws {
        let box = Box(PendingConnectionLimits(perAddress: 3, total: 100))
        let a1 = try #require(box.admit("a1", key: "A"))
        _ = try #require(box.admit("b1", key: "B"))
        let a2 = try #require(box.admit("a2", key: "A"))
        _ = try #require(box.admit("a3", key: "A"))
        #expect(a1.1.isEmpty && box.table.count(for: "A") == 3)

        // a1 is busy (a request being answered): a4 takes the place of the oldest IDLE one, a2.
        box.table.markBusy(a1.0)
        let a4 = try #require(box.admit("a4", key: "A"))
        #expect(a4.1 == ["a2"] && box.table.count(for: "A") == 3 && box.table.count == 4)
        let removedAgain = box.table.remove(a2.0)
        #expect(removedAgain == nil, "an evicted connection has left the table")

        // a1's response ends: it is now the newest idle one of A, so a3 goes next, then a4, then a1.
        box.table.markIdle(a1.0)
        #expect(try #require(box.admit("a5", key: "A")).1 == ["a3"])
        #expect(try #require(box.admit("a6", key: "A")).1 == ["a4"])
        #expect(try #require(box.admit("a7", key: "A")).1 == ["a1"])
        #expect(box.table.count(for: "B") == 1, "another address is never evicted for A")
    }

    @Test func totalLimitEvictsTheOldestIdleOfAll() throws {
        let box = Box(PendingConnectionLimits(perAddress: 10, total: 3))
        let a = try #require(box.admit("a", key: "A"))
        _ = try #require(box.admit("b", key: "B"))
        _ = try #require(box.admit("proxied", key: nil))
        box.table.markBusy(a.0)
        #expect(try #require(box.admit("c", key: "C")).1 == ["b"])
        #expect(try #require(box.admit("d", key: "D")).1 == ["proxied"])
        #expect(box.table.count == 3 && box.table.count(for: "B") == 0 && box.table.count(for: "A") == 1)
    }

    @Test func newcomerIsRefusedWhenEverythingOverTheLimitIsBusy() throws {
        let box = Box(PendingConnectionLimits(perAddress: 2, total: 3))
        let a1 = try #require(box.admit("a1", key: "A"))
        let a2 = try #require(box.admit("a2", key: "A"))
        box.table.markBusy(a1.0)
        box.table.markBusy(a2.0)
        guard box.admit("a3", key: "A")?.0 == nil else {
            Issue.record("a third connection from A was admitted with both of A's busy")
            return
        }
        let b = try #require(box.admit("b", key: "B"))
        box.table.markBusy(b.0)
        guard box.admit("c", key: "C")?.0 == nil else {
            Issue.record("admitted over the total with every connection busy")
            return
        }
        #expect(box.table.count == 3 && box.table.idleCount == 0)
        // A connection that closes frees its place.
        box.table.remove(b.0)
        #expect(box.admit("c", key: "C")?.1 == [])
    }

    @Test func upgradedOrClosedConnectionsStopCounting() throws {
        let box = Box(PendingConnectionLimits(perAddress: 2, total: 10))
        let ids = try (1...2).map { n in try #require(box.admit("a\(n)", key: "A")).0 }
        box.table.remove(ids[0])
        box.table.remove(ids[0])  // idempotent
        box.table.markIdle(ids[0])  // no effect on a removed id
        box.table.markBusy(ids[0])
        #expect(box.table.count == 1 && box.table.count(for: "A") == 1 && box.table.idleIDs == [ids[1]])
        #expect(box.admit("a3", key: "A")?.1 == [])
    }

    @Test func limitsAreClampedToTheFileDescriptorShare() {
        #expect(
            PendingConnectionLimits.effective(perAddress: 64, total: 1024, fileDescriptorLimit: nil)
                == .init(perAddress: 64, total: 1024)
        )
        #expect(
            PendingConnectionLimits.effective(perAddress: 64, total: 1024, fileDescriptorLimit: 65536)
                == .init(perAddress: 64, total: 1024)
        )
        #expect(
            PendingConnectionLimits.effective(perAddress: 64, total: 1024, fileDescriptorLimit: 1024)
                == .init(perAddress: 64, total: 480)
        )
        #expect(
            PendingConnectionLimits.effective(perAddress: 64, total: 1024, fileDescriptorLimit: 256)
                == .init(perAddress: 64, total: 96)
        )
        #expect(
            PendingConnectionLimits.effective(perAddress: 64, total: 1024, fileDescriptorLimit: 100)
                == .init(perAddress: 18, total: 18)
        )
        #expect(
            PendingConnectionLimits.effective(perAddress: 64, total: 1024, fileDescriptorLimit: 10)
                == .init(perAddress: 8, total: 8)
        )
    }
}
