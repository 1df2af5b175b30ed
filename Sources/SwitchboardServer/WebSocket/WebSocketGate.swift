import HTTPTypes
import NIOCore
import NIOHTTP1
import SwitchboardAuth
import SwitchboardBasics
import SwitchboardCore
import Synchronization

/// Decides, before the upgrade, whether a WebSocket request may upgrade: the route exists, the client
/// address and the user are within `limits.upgrades_per_second` (429), the token is valid (PROTOCOL.md §2)
/// and the node has room (`websocket.max_connections`, 503).
final class WebSocketGate: ConnectionSlotOwner {
    /// What a route runs after the upgrade.
    enum Route: Sendable {
        case signaling
        case echo
    }

    /// An accepted upgrade.
    struct Acceptance: Sendable {
        let route: Route
        let identity: UserIdentity?
        let connection: ConnectionInfo
        let responseHeaders: HTTPHeaders
        /// The connection's place among `websocket.max_connections`.
        let slot: ConnectionSlot
    }

    /// A refused upgrade, answered with an HTTP status instead of 101.
    struct Refusal: Sendable, Error {
        let status: HTTPResponse.Status
        let message: String
    }

    private let authenticator: JWTAuthenticator
    private let maxConnections: Int
    private let echoRoute: Bool
    private let open = Atomic<Int>(0)
    private let upgradesByAddress: KeyedTokenBuckets<String>
    private let upgradesByUser: KeyedTokenBuckets<String>
    private let clock: SwitchboardClock
    /// The user agents of the connections, one copy each.
    private let userAgents = StringInterner()
    /// How many times `limits.upgrades_per_second` one client address may upgrade.
    static let usersPerAddress = 10

    /// A gate admitting at most `maxConnections` at once, `upgradesPerSecond` upgrades per second per user
    /// and ten times as many per client address (many users can share one address behind a NAT).
    init(
        authenticator: JWTAuthenticator,
        maxConnections: Int,
        upgradesPerSecond: Int,
        echoRoute: Bool,
        clock: SwitchboardClock = .system
    ) {
        self.authenticator = authenticator
        self.maxConnections = maxConnections
        self.echoRoute = echoRoute
        let perAddress = upgradesPerSecond * Self.usersPerAddress
        self.upgradesByAddress = KeyedTokenBuckets(rate: perAddress, per: .seconds(1), burst: perAddress)
        self.upgradesByUser = KeyedTokenBuckets(rate: upgradesPerSecond, per: .seconds(1), burst: upgradesPerSecond)
        self.clock = clock
    }

    /// WebSocket connections open now.
    var openConnections: Int { open.load(ordering: .relaxed) }

    /// Checks the request and, when it may upgrade, takes a connection slot: the caller releases it when
    /// `channel` closes (``SignalingHandler`` with the close callback it needs anyway).
    func admit(_ head: HTTPRequestHead, channel: any Channel) -> Result<Acceptance, Refusal> {
        let (path, query) = Self.split(head.uri)
        let route: Route
        switch path {
        case "/ws": route = .signaling
        case "/autobahn" where echoRoute: route = .echo
        default: return .failure(Refusal(status: .notFound, message: "no WebSocket route at \(path)"))
        }

        let ip = Self.clientIP(head.headers, channel: channel)
        var identity: UserIdentity?
        var responseHeaders = HTTPHeaders()
        if route == .signaling {
            guard upgradesByAddress.take(ip, now: clock.monotonicNanoseconds()) else {
                return .failure(
                    Refusal(status: .tooManyRequests, message: "too many upgrades from \(ip): over limits.upgrades_per_second")
                )
            }
            guard
                let (token, protocolEntry) = BearerToken.extract(
                    query: query,
                    authorization: head.headers.first(name: "Authorization"),
                    webSocketProtocols: head.headers[canonicalForm: "Sec-WebSocket-Protocol"].joined(separator: ",")
                )
            else {
                return .failure(Refusal(status: .unauthorized, message: "missing token"))
            }
            do {
                identity = try authenticator.authenticate(token: token, now: clock.nowMilliseconds() / 1000)
            } catch {
                return .failure(Refusal(status: .unauthorized, message: error.message))
            }
            guard let user = identity?.id, upgradesByUser.take(user, now: clock.monotonicNanoseconds()) else {
                return .failure(
                    Refusal(status: .tooManyRequests, message: "too many upgrades for this user: over limits.upgrades_per_second")
                )
            }
            if let protocolEntry { responseHeaders.add(name: "Sec-WebSocket-Protocol", value: protocolEntry) }
        }

        guard reserveSlot() else {
            return .failure(Refusal(status: .serviceUnavailable, message: "node is at websocket.max_connections"))
        }
        let slot = ConnectionSlot(of: self)
        // Interned: thousands of connections share a handful of user agents.
        let userAgent = userAgents.intern(head.headers.first(name: "User-Agent") ?? "")
        let connection = ConnectionInfo(userAgent: userAgent, ip: ip)
        return .success(
            Acceptance(route: route, identity: identity, connection: connection, responseHeaders: responseHeaders, slot: slot)
        )
    }

    func slotReleased() {
        open.subtract(1, ordering: .relaxed)
    }

    private func reserveSlot() -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < maxConnections {
            let (exchanged, actual) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = actual
        }
        return false
    }

    private static func split(_ uri: String) -> (path: String, query: String?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, nil) }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }

    /// The client's address: the peer, or what `X-Forwarded-For` says when the peer is one of
    /// `server.trusted_proxies` (``ClientAddress``).
    private static func clientIP(_ headers: HTTPHeaders, channel: any Channel) -> String {
        ClientAddress.of(headers, channel: channel)
    }
}
