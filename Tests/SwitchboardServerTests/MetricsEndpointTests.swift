import NIOCore
import NIOEmbedded
import NIOWebSocket
import Prometheus
import SwitchboardAuth
import SwitchboardCore
import SwitchboardProto
import Synchronization
import Testing

@testable import SwitchboardServer

/// `/metrics` text: what the engine counts, rendered from a real Prometheus registry.
@Suite struct MetricsEndpointTests {
    let metrics = PrometheusMetrics()
    let board: Switchboard
    let nodeMetrics: NodeMetrics

    init() {
        board = Switchboard(
            settings: SwitchboardSettings(
                nodeId: "node-m",
                ringTimeout: .seconds(60),
                reconnectGrace: .seconds(10),
                invitesPerMinute: 100
            ),
            scheduler: IdleScheduler(),
            records: DiscardingRecordSink(),
            events: DiscardingEventSink(),
            metrics: SignalingMetrics(factory: metrics.factory)
        )
        let gate = WebSocketGate(
            authenticator: JWTAuthenticator(secret: "metrics-test-secret-0123456789abcdef"),
            maxConnections: 10,
            upgradesPerSecond: 10,
            echoRoute: false
        )
        nodeMetrics = NodeMetrics(metrics: metrics, switchboard: board, gate: gate)
    }

    /// The samples of the text, by series (`name{labels}`); fails on a line that is not a sample or a comment.
    func samples() throws -> [String: Double] {
        let text = String(decoding: nodeMetrics.prometheusText(), as: UTF8.self)
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2, "not a sample: \(line)")
            let value = try #require(Double(String(parts.last!)), "no value in \(line)")
            #expect(samples.updateValue(value, forKey: String(parts[0])) == nil, "duplicate series \(parts[0])")
        }
        return samples
    }

    func connect(_ user: String) -> (Session, CollectingOutlet) {
        let outlet = CollectingOutlet()
        let session = board.connect(
            UserIdentity(id: user)!,
            connection: ConnectionInfo(userAgent: "test", ip: "127.0.0.1"),
            outlet: outlet
        )
        return (session, outlet)
    }

    func signal(_ json: String, from session: Session, to user: String) {
        var message = ChatMessage()
        message.to = user
        message.contentType = ContentType.signal
        message.messageType = MessageType.direct
        message.content = json
        board.receive(message, from: session)
    }

    @Test func anAnsweredCallShowsInEveryFamily() throws {
        let (alice, _) = connect("alice")
        let (bob, _) = connect("bob")
        signal(#"{"type":"call-invite","callId":"c1"}"#, from: alice, to: "bob")
        signal(#"{"type":"call-accept","callId":"c1"}"#, from: bob, to: "alice")
        signal(#"{"type":"ice-candidate","callId":"c1","candidate":{"candidate":"x"}}"#, from: bob, to: "alice")
        signal(#"{"type":"offer","callId":"other","offer":{"type":"offer","sdp":"v=0"}}"#, from: bob, to: "alice")  // no-call

        let samples = try samples()
        #expect(samples[#"switchboard_signals_total{type="call-invite"}"#] == 1)
        #expect(samples[#"switchboard_signals_total{type="call-accept"}"#] == 1)
        #expect(samples[#"switchboard_signals_total{type="ice-candidate"}"#] == 1)
        #expect(samples[#"switchboard_signals_total{type="offer"}"#] == 1)
        #expect(samples[#"switchboard_signals_total{type="answer"}"#] == 0)
        #expect(samples[#"switchboard_messages_relayed_total{route="local"}"#] == 3)
        #expect(samples[#"switchboard_messages_relayed_total{route="remote"}"#] == 0)
        #expect(samples[#"switchboard_calls_total{status="invite"}"#] == 1)
        #expect(samples[#"switchboard_calls_total{status="accepted"}"#] == 1)
        #expect(samples[#"switchboard_calls_total{status="hung_up"}"#] == 0)
        #expect(samples[#"switchboard_errors_total{notice="error",reason="no-call"}"#] == 1)
        #expect(samples[#"switchboard_errors_total{notice="call-failed",reason="busy"}"#] == 0)
        #expect(samples["switchboard_call_invite_to_accept_seconds_count"] == 1)
        #expect(samples["switchboard_call_duration_seconds_count"] == 0)
        #expect(samples[#"switchboard_sessions{node="node-m"}"#] == 2)
        #expect(samples[#"switchboard_calls_in_progress{node="node-m"}"#] == 1)
        #expect(samples[#"switchboard_websocket_connections{node="node-m"}"#] == 0)
    }

    @Test func histogramsUseTheirOwnBuckets() throws {
        let samples = try samples()
        let families: [(name: String, first: String, last: String)] = [
            ("switchboard_call_invite_to_accept_seconds", "0.5", "60.0"),
            ("switchboard_call_duration_seconds", "1.0", "3600.0"),
        ]
        for family in families {
            let bounds = samples.keys
                .filter { $0.hasPrefix("\(family.name)_bucket{le=") }
                .map { $0.dropFirst("\(family.name)_bucket{le=\"".count).dropLast(2) }
                .filter { $0 != "+Inf" }
                .compactMap { Double(String($0)) }
                .sorted()
            #expect(bounds.first == Double(family.first), "\(family.name): \(bounds)")
            #expect(bounds.last == Double(family.last), "\(family.name): \(bounds)")
            #expect(bounds.count >= 8, "\(family.name): \(bounds)")
        }
    }

    @Test func everyFamilyHasATypeLine() throws {
        let text = String(decoding: nodeMetrics.prometheusText(), as: UTF8.self)
        let expected = [
            ("switchboard_messages_relayed_total", "counter"),
            ("switchboard_signals_total", "counter"),
            ("switchboard_calls_total", "counter"),
            ("switchboard_errors_total", "counter"),
            ("switchboard_call_invite_to_accept_seconds", "histogram"),
            ("switchboard_call_duration_seconds", "histogram"),
            ("switchboard_sessions", "gauge"),
            ("switchboard_websocket_connections", "gauge"),
            ("switchboard_calls_in_progress", "gauge"),
        ]
        for (name, type) in expected {
            #expect(text.contains("# TYPE \(name) \(type)\n"), "\(name)")
        }
    }

    @Test func noticesTheServerSendsItselfAreCounted() throws {
        let channel = EmbeddedChannel()
        let identity = UserIdentity(id: "carol")!
        let application = SignalingHandler.application(
            for: WebSocketGate.Acceptance(
                route: .signaling,
                identity: identity,
                connection: ConnectionInfo(userAgent: "test", ip: "127.0.0.1"),
                responseHeaders: [:],
                slot: ConnectionSlot(of: nil)
            ),
            identity: identity,
            channel: channel,
            services: SignalingHandler.Services(
                switchboard: board,
                budgets: UserBudgets(messagesPerSecond: 100, burst: 100),
                iceServers: ICEServerIssuer(stunURLs: [], turnURLs: [], secret: nil, ttl: .seconds(60)),
                isCallIDTaken: { _ in false },
                batcher: FlushBatcher(group: channel.embeddedEventLoop)
            )
        )
        let session = WebSocketSessionHandler(limits: WebSocketSessionLimits(WebSocketSettings()), receiver: application.receiver)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(try channel.readOutbound(as: WebSocketFrame.self) != nil)  // `ice-servers`, which is not counted

        let key = WebSocketMaskingKey([1, 2, 3, 4] as [UInt8])!
        for (opcode, bytes) in [(WebSocketOpcode.text, Array("hello".utf8)), (.binary, [0xFF, 0xFF])] {  // not a ChatMessage
            var data = ByteBuffer(bytes: bytes)
            data.webSocketMask(key)
            try channel.writeInbound(WebSocketFrame(fin: true, opcode: opcode, maskKey: key, data: data))
        }

        var notices = 0
        while try channel.readOutbound(as: WebSocketFrame.self) != nil { notices += 1 }
        #expect(notices == 2)
        #expect(try samples()[#"switchboard_errors_total{notice="error",reason="invalid-message"}"#] == 2)
        _ = try channel.finish()
    }

    @Test func applicationsInOneProcessKeepTheirOwnRegistries() throws {
        let other = PrometheusMetrics()
        SignalingMetrics(factory: other.factory).relayed(.local)
        SignalingMetrics(factory: metrics.factory).relayed(.remote)
        let text = String(decoding: other.registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"switchboard_messages_relayed_total{route="local"} 1"#))
        #expect(try samples()[#"switchboard_messages_relayed_total{route="local"}"#] == 0)
        #expect(try samples()[#"switchboard_messages_relayed_total{route="remote"}"#] == 1)
    }
}

// MARK: - Fakes

final class CollectingOutlet: SessionOutlet {
    private let delivered = Mutex<[ChatMessage]>([])
    func deliver(_ message: ChatMessage) { delivered.withLock { $0.append(message) } }
    func close(code: UInt16, reason: String) {}
    var messages: [ChatMessage] { delivered.withLock { $0 } }
}

struct IdleScheduler: TimerScheduler {
    struct Never: ScheduledTimer { func cancel() {} }
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> any ScheduledTimer { Never() }
}

struct DiscardingRecordSink: CallRecordSink {
    func enqueue(_ record: CallRecord) {}
}

struct DiscardingEventSink: CallEventSink {
    func emit(_ event: CallEvent) {}
}
