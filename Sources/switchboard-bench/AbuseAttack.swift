import NIOCore
import NIOPosix
import NIOWebSocket
import SwiftProtobuf
import SwitchboardAuth
import SwitchboardProto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who attacks in an abuse run.
struct AttackSettings: Sendable {
    var url: WebSocketURL
    var secret: String
    var tag: String
    var nonReaders: Int
    var idleSockets: Int
    var slowloris: Int
    var slowlorisInterval: Double
    var reconnectToken: Bool
    /// Non-readers from 127.0.0.2, idle sockets and slowloris from 127.0.0.3, the token from 127.0.0.4 (each
    /// attacker an address of its own, as on the internet); else all from the default source, 127.0.0.1.
    var separateAddresses: Bool
}

/// How one kind of plain TCP attacker fared.
struct SocketCounts: Sendable {
    /// Connections made (reconnects included).
    var opened = 0
    var connectErrors = 0
    /// Connections the node answered something (a 400/408, …).
    var answered = 0
    var closedByNode = 0
    /// Seconds from connect to the node's close, of every connection it closed.
    var lifetimes: [Double] = []
    var openAtEnd = 0
}

/// What the attackers did and what the node did to them.
struct AttackCounts: Sendable {
    // Non-reading clients.
    var floodConnections = 0
    /// Upgrades refused, by HTTP status.
    var floodRefused: [Int: Int] = [:]
    var floodConnectErrors = 0
    var floodDropped = 0
    /// Seconds from the 101 to the node dropping the connection.
    var floodLifetimes: [Double] = []
    /// Pings written, and as many heartbeats and texts to an offline user.
    var floodRounds = 0
    var floodPayloadBytes = 0
    var floodOpenAtEnd = 0
    // Plain TCP.
    var idle = SocketCounts()
    var slowloris = SocketCounts()
    // The reconnecting token.
    var reconnectAttempts = 0
    /// Answers to its upgrade requests by HTTP status (101 = upgraded).
    var reconnectStatus: [Int: Int] = [:]
    var reconnectErrors: [String: Int] = [:]
}

/// The attackers of an abuse run, all on one event loop of their own (the pair has another):
/// - `nonReaders` clients that upgrade and then flood pings (125-byte payload, each answered by a pong of
///   the same size), heartbeats and texts to an offline user without ever reading; dropped, they come back;
/// - `idleSockets` plain TCP connections that send nothing and `slowloris` that send one byte of a request
///   head every `slowlorisInterval`; closed, they come back 1 s later;
/// - one token reconnecting as fast as the node answers.
final class Attack {
    private enum Kind { case flood, idle, slowloris, token }

    private struct Live {
        let kind: Kind
        let channel: any Channel
        let since: NIODeadline
    }

    private let settings: AttackSettings
    let loop: any EventLoop
    private let signer: JWTSigner
    private let expiresAt: Int64
    /// A ping, a heartbeat and a text to an offline user, ``roundsPerChunk`` times, as complete frames.
    private let floodChunk: ByteBuffer
    private let floodPayloadPerChunk: Int
    private static let roundsPerChunk = 16
    private let floodFrom: SocketAddress?
    private let socketsFrom: SocketAddress?
    private let tokenFrom: SocketAddress?
    private var running = false
    private var counts = AttackCounts()
    private var live: [Int: Live] = [:]
    private var floods: [Int: FloodHandler] = [:]
    private var nextID = 0

    init(settings: AttackSettings, loop: any EventLoop) throws {
        self.settings = settings
        self.loop = loop
        self.signer = JWTSigner(secret: settings.secret)
        self.expiresAt = Int64(time(nil)) + 3600
        let address = { (text: String) in settings.separateAddresses ? try SocketAddress(ipAddress: text, port: 0) : nil }
        self.floodFrom = try address("127.0.0.2")
        self.socketsFrom = try address("127.0.0.3")
        self.tokenFrom = try address("127.0.0.4")

        var heartbeat = ChatMessage()
        heartbeat.type = "heatbeat"  // sic: what go-chat's client sends (PROTOCOL.md §3)
        heartbeat.content = "ping"
        var text = ByteBuffer()
        Wire.writeDirectMessage(
            to: Array("\(settings.tag)offline".utf8),
            content: Array(repeating: UInt8(ascii: "t"), count: 125),
            contentType: 1,
            into: &text
        )
        let ping = ByteBuffer(repeating: UInt8(ascii: "p"), count: 125)
        let beat = ByteBuffer(bytes: try heartbeat.serializedBytes() as [UInt8])
        var chunk = ByteBuffer()
        for _ in 0..<Self.roundsPerChunk {
            Wire.writeClientFrame(opcode: .ping, payload: ping, into: &chunk)
            Wire.writeClientFrame(opcode: .binary, payload: beat, into: &chunk)
            Wire.writeClientFrame(opcode: .binary, payload: text, into: &chunk)
        }
        self.floodChunk = chunk
        self.floodPayloadPerChunk = Self.roundsPerChunk * (ping.readableBytes + beat.readableBytes + text.readableBytes)
    }

    private func token(_ user: String) -> String {
        signer.token(user: user, name: nil, avatar: nil, expiresAt: expiresAt)
    }

    private func makeID() -> Int {
        nextID += 1
        return nextID
    }

    // MARK: - Start and stop

    func start() {
        running = true
        for k in 0..<settings.nonReaders { openFlood(k) }
        if settings.nonReaders > 0 { floodTick() }
        for _ in 0..<settings.idleSockets { openSocket(slow: false) }
        for _ in 0..<settings.slowloris { openSocket(slow: true) }
        if settings.reconnectToken { reconnect() }
    }

    /// Stops the attack: every attacker leaves (its connection closed) and the counts are final.
    func stop() -> EventLoopFuture<AttackCounts> {
        running = false
        var closes: [EventLoopFuture<Void>] = []
        for entry in live.values {
            switch entry.kind {
            case .flood: counts.floodOpenAtEnd += 1
            case .idle: counts.idle.openAtEnd += 1
            case .slowloris: counts.slowloris.openAtEnd += 1
            case .token: break
            }
            closes.append(entry.channel.close())
        }
        live.removeAll()
        floods.removeAll()
        return EventLoopFuture.andAllComplete(closes, on: loop).assumeIsolated().map { self.counts }.nonisolated()
    }

    /// Keeps a connection that came up, or closes it when the attack is over already.
    private func keep(_ channel: any Channel, id: Int, kind: Kind, since: NIODeadline) -> Bool {
        guard running, channel.isActive else {
            channel.close(promise: nil)
            return false
        }
        live[id] = Live(kind: kind, channel: channel, since: since)
        return true
    }

    /// The seconds a connection the node closed had lived, or nil when it was not ours to count.
    private func gone(_ id: Int) -> Double? {
        guard running, let entry = live.removeValue(forKey: id) else { return nil }
        return Double((NIODeadline.now() - entry.since).nanoseconds) / 1e9
    }

    private func later(_ delay: TimeAmount, _ body: @escaping () -> Void) {
        loop.assumeIsolated().scheduleTask(in: delay) {
            if self.running { body() }
        }
    }

    // MARK: - Non-reading clients

    private func openFlood(_ k: Int) {
        guard running else { return }
        let id = makeID()
        let me = NIOLoopBound(self, eventLoop: loop)
        WebSocketClient.connect(
            on: loop,
            url: settings.url,
            token: token("\(settings.tag)n\(k)"),
            localAddress: floodFrom,
            receiveBufferSize: 1024
        ) { channel in
            try channel.syncOptions?.setOption(.autoRead, value: false)
            let attack = me.value
            let handler = FloodHandler(
                chunk: attack.floodChunk,
                onWrite: {
                    attack.counts.floodRounds += Self.roundsPerChunk
                    attack.counts.floodPayloadBytes += attack.floodPayloadPerChunk
                },
                onInactive: { attack.floodGone(id: id, k: k) }
            )
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)  // raw frames, past the encoder
            attack.floods[id] = handler
        }
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let channel):
                if self.keep(channel, id: id, kind: .flood, since: .now()) { self.counts.floodConnections += 1 }
            case .failure(BenchError.refused(_, let status)):
                self.counts.floodRefused[Int(status.code), default: 0] += 1
                self.later(.milliseconds(500)) { self.openFlood(k) }
            case .failure:
                self.counts.floodConnectErrors += 1
                self.later(.milliseconds(500)) { self.openFlood(k) }
            }
        }
    }

    /// One pass over the floods, 4 chunks (192 frames) each at most; the next pass is armed after this one, so the loop
    /// always gets back to I/O in between (100 µs later, or 1 ms when every flood was blocked).
    private func floodTick() {
        guard running else { return }
        var written = 0
        for flood in floods.values { written += flood.pump(upTo: 4) }
        loop.assumeIsolated().scheduleTask(in: written > 0 ? .microseconds(100) : .milliseconds(1)) {
            self.floodTick()
        }
    }

    private func floodGone(id: Int, k: Int) {
        floods[id] = nil
        guard let lifetime = gone(id) else { return }
        counts.floodDropped += 1
        counts.floodLifetimes.append(lifetime)
        later(.milliseconds(500)) { self.openFlood(k) }
    }

    // MARK: - Idle sockets and slowloris

    private func openSocket(slow: Bool) {
        guard running else { return }
        let id = makeID()
        let me = NIOLoopBound(self, eventLoop: loop)
        let interval: TimeAmount? = slow ? .nanoseconds(Int64(settings.slowlorisInterval * 1e9)) : nil
        var bootstrap = ClientBootstrap(group: loop).connectTimeout(.seconds(10))
        if let socketsFrom { bootstrap = bootstrap.bind(to: socketsFrom) }
        bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let attack = me.value
                    try channel.pipeline.syncOperations.addHandler(
                        IdleSocketHandler(
                            trickleEvery: interval,
                            onAnswer: { attack.update(slow: slow) { $0.answered += 1 } },
                            onInactive: { attack.socketGone(id: id, slow: slow) }
                        )
                    )
                }
            }
            .connect(host: settings.url.host, port: settings.url.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    if self.keep(channel, id: id, kind: slow ? .slowloris : .idle, since: .now()) {
                        self.update(slow: slow) { $0.opened += 1 }
                    }
                case .failure:
                    self.update(slow: slow) { $0.connectErrors += 1 }
                    self.later(.seconds(1)) { self.openSocket(slow: slow) }
                }
            }
    }

    private func update(slow: Bool, _ change: (inout SocketCounts) -> Void) {
        if slow { change(&counts.slowloris) } else { change(&counts.idle) }
    }

    private func socketGone(id: Int, slow: Bool) {
        guard let lifetime = gone(id) else { return }
        update(slow: slow) {
            $0.closedByNode += 1
            $0.lifetimes.append(lifetime)
        }
        later(.seconds(1)) { self.openSocket(slow: slow) }
    }

    // MARK: - The reconnecting token

    /// One upgrade at a time, the next as soon as the node has answered the last; upgraded sessions stay
    /// until the node replaces them (they answer its close handshake).
    private func reconnect() {
        guard running else { return }
        counts.reconnectAttempts += 1
        let id = makeID()
        let me = NIOLoopBound(self, eventLoop: loop)
        WebSocketClient.connect(on: loop, url: settings.url, token: token("\(settings.tag)r"), localAddress: tokenFrom) {
            channel in
            try channel.pipeline.syncOperations.addHandler(QuietHandler(onInactive: { _ = me.value.gone(id) }))
        }
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let channel):
                self.counts.reconnectStatus[101, default: 0] += 1
                _ = self.keep(channel, id: id, kind: .token, since: .now())
                self.loop.execute { me.value.reconnect() }
            case .failure(BenchError.refused(_, let status)):
                self.counts.reconnectStatus[Int(status.code), default: 0] += 1
                self.loop.execute { me.value.reconnect() }
            case .failure(let error):
                self.counts.reconnectErrors[Self.describe(error), default: 0] += 1
                self.later(.milliseconds(10)) { self.reconnect() }  // no answer at all: do not spin
            }
        }
    }

    private static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }
}
