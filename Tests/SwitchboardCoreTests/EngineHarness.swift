import Logging
import NIOCore
import NIOPosix
import RedisTestSupport
import RedisWire
import SwitchboardProto
import Synchronization
import Testing

@testable import SwitchboardCore
@testable import SwitchboardRedis

/// One user's connection in a test, and the engine it is connected to.
struct Peer {
    let session: Session
    let outlet: FakeOutlet
    let board: Switchboard
    var user: String { session.user }
}

/// How the engine under test runs: alone; as a cluster node on a real redis-server (its presence, calls
/// and delivery ports on Redis) with every user on it; or as two nodes on one redis-server, users placed
/// on them in turn (the first user on `node-1`, the second on `node-2`, …).
enum EngineMode: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case singleNode
    case cluster
    case twoNodes

    var testDescription: String { rawValue }

    var nodes: [String] {
        switch self {
        case .singleNode: []
        case .cluster: ["node-1"]
        case .twoNodes: ["node-1", "node-2"]
        }
    }
}

/// A redis-server and the cluster nodes' clients and inbox subscribers, running; all stop when it goes.
final class ClusterBackend {
    /// A payload published to an inbox after everything a test did: once a node's subscriber has handed
    /// it over, what was published to that node before it has been handled.
    static let marker = "switchboard-engine-test-settle"

    let server: RedisServerProcess
    let admin: RedisClient
    private(set) var deliveries: [String: ClusterDelivery] = [:]
    /// How many markers each node's subscriber handed over.
    private final class Markers: Sendable {
        let seen = Mutex<[String: Int]>([:])
    }

    private let markers = Markers()
    private var running: [Task<Void, any Error>] = []

    init() async throws {
        server = try await RedisServerProcess.started()
        admin = try RedisClient(url: server.url())
        try await start(admin)
    }

    deinit {
        for task in running { task.cancel() }
        server.stop()
    }

    private func start(_ service: RedisClient) async throws {
        let states = service.stateChanges()
        running.append(Task { try await service.run() })
        try await awaitState(.connected, in: states)
    }

    /// The ports of node `node`: a client of its own, and a subscriber to its inbox on its delivery loop.
    func ports(
        of node: String,
        keys: ClusterKeys,
        ringTimeout: Duration,
        maxBlocksPerUser: Int = 1000
    ) async throws -> ClusterPorts {
        let client = try RedisClient(url: server.url())
        try await start(client)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let delivery = ClusterDelivery(
            nodeId: node,
            redis: client,
            keys: keys,
            eventLoop: loop,
            limits: .standard,
            logger: Logger(label: node)
        )
        deliveries[node] = delivery
        let markers = markers
        let subscriber = try RedisSubscriber(
            configuration: RedisConnectionConfiguration(url: server.url()),
            channels: [keys.inbox(node)],
            eventLoopGroup: loop
        ) { message in
            if message.payload.readableBytesView.elementsEqual(Self.marker.utf8) {
                markers.seen.withLock { $0[node, default: 0] += 1 }
            } else {
                delivery.receive(message.payload, isBroadcast: false)
            }
        }
        let states = subscriber.stateChanges()
        running.append(Task { try await subscriber.run() })
        try await awaitState(.connected, in: states)
        // Alive for the other node's outbox.
        _ = try await ClusterScripts(redis: admin, keys: keys, node: node).beat(now: 1, deadline: 0).get()
        return .redis(
            ClusterScripts(redis: client, keys: keys, node: node),
            delivery: delivery,
            ringTimeout: ringTimeout,
            // Redis expires kept signals by the wall clock, the engines' grace timers are manual: a test
            // starved for the engines' 10 s in a loaded run would find nothing kept (test_resume.py
            // covers the expiry).
            reconnectGrace: .seconds(600),
            maxBlocksPerUser: maxBlocksPerUser,
            isReady: { true }
        )
    }

    /// Waits until every node's outbox has nothing on its way, then until a marker published to each inbox
    /// after that has arrived: what the nodes sent each other has been handled. Returns whether nothing
    /// was sent meanwhile (handling what arrived can send more: a node's answer may reach another's inbox
    /// after that inbox's marker did, so a caller drains again until this is `true`).
    func drain(keys: ClusterKeys) async throws -> Bool {
        // Every parcel Redis took is kept for a replay: a change in what is kept means something was sent.
        func sent() -> [Int] {
            deliveries.flatMap { node, delivery in
                deliveries.keys.filter { $0 != node }.sorted().map { delivery.outbox.usage(of: $0).kept.count }
            }
        }
        let sentBefore = sent()
        for delivery in deliveries.values {
            try await delivery.eventLoop.submit {}.get()  // what was published this tick goes out
        }
        let deadline = ContinuousClock.now + .seconds(5)
        for (node, delivery) in deliveries {
            for other in deliveries.keys where other != node {
                while delivery.outbox.usage(of: other).inFlight.count + delivery.outbox.usage(of: other).held.count > 0 {
                    guard ContinuousClock.now < deadline else { throw TimedOut(what: "\(node)'s outbox to drain") }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
        }
        for node in deliveries.keys {
            let before = markers.seen.withLock { $0[node, default: 0] }
            _ = try await admin.execute(["PUBLISH", RESPArgument(keys.inbox(node)), RESPArgument(Self.marker)])
            while markers.seen.withLock({ $0[node, default: 0] }) == before {
                guard ContinuousClock.now < deadline else { throw TimedOut(what: "\(node)'s inbox to catch up") }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        for delivery in deliveries.values {
            try await delivery.eventLoop.submit {}.get()  // what the last arrivals published goes out
        }
        return sent() == sentBefore
    }
}

/// A switchboard wired to fakes (and, in the cluster modes, to a real redis-server).
struct Harness {
    static let start: Int64 = 1_700_000_000_000

    let clock = ManualClock(milliseconds: start)
    let scheduler = ManualScheduler()
    let recordSink = RecordingRecordSink()
    let eventSink = RecordingEventSink()
    /// The engines; the first is the one `board` names.
    let boards: [Switchboard]
    let backend: ClusterBackend?
    private let keys = ClusterKeys()
    private let placement = Placement()

    /// The first engine (`node-1`).
    var board: Switchboard { boards[0] }

    init(
        _ mode: EngineMode,
        invitesPerMinute: Int = 1000,
        metrics: SignalingMetrics = SignalingMetrics(),
        permission: (any InvitePermission)? = nil,
        maxBlocksPerUser: Int = 1000
    ) async throws {
        let settings = { (node: String) in
            SwitchboardSettings(
                nodeId: node,
                ringTimeout: .seconds(60),
                reconnectGrace: .seconds(10),
                invitesPerMinute: invitesPerMinute
            )
        }
        let backend = mode == .singleNode ? nil : try await ClusterBackend()
        var boards: [Switchboard] = []
        for node in mode == .singleNode ? ["node-1"] : mode.nodes {
            let ports = try await backend?.ports(
                of: node,
                keys: keys,
                ringTimeout: .seconds(60),
                maxBlocksPerUser: maxBlocksPerUser
            )
            boards.append(
                Switchboard(
                    settings: settings(node),
                    cluster: ports,
                    scheduler: scheduler,
                    records: recordSink,
                    events: eventSink,
                    permission: permission,
                    maxBlocksPerUser: maxBlocksPerUser,
                    clock: clock.clock,
                    metrics: metrics
                )
            )
            if let ports { (ports.delivery as? ClusterDelivery)?.deliver(to: boards.last!) }
        }
        self.boards = boards
        self.backend = backend
    }

    /// Waits until the engines have handled every answer they wait for and every message they sent each
    /// other (at once on a single node).
    func settle(sourceLocation: SourceLocation = #_sourceLocation) async {
        let deadline = ContinuousClock.now + .seconds(10)
        do {
            var answered: [Int]
            var quiet: Bool
            repeat {
                while boards.contains(where: { $0.pendingAnswerCount > 0 }) {
                    guard ContinuousClock.now < deadline else { throw TimedOut(what: "the engines' answers") }
                    try await Task.sleep(for: .milliseconds(1))
                }
                guard boards.count > 1, let backend else { return }
                answered = boards.map(\.answeredCount)
                quiet = try await backend.drain(keys: keys)
                // An answer handled meanwhile may have sent another node something after it drained.
            } while !quiet || boards.contains(where: { $0.pendingAnswerCount > 0 }) || boards.map(\.answeredCount) != answered
        } catch {
            Issue.record("the engines did not settle: \(error)", sourceLocation: sourceLocation)
        }
    }

    var records: [CallRecord] { recordSink.records }
    var events: [CallEvent] { eventSink.events }
    /// Calls ringing or active on any node (each node knows those of its users).
    var callCount: Int { Set(boards.flatMap { $0.local.allCalls.map(\.id) }).count }
    var sessionCount: Int { boards.map(\.sessionCount).reduce(0, +) }
    var sessions: [Session] { boards.flatMap(\.sessions) }

    static func connection(of user: String) -> ConnectionInfo {
        ConnectionInfo(userAgent: "agent/\(user)", ip: "10.0.0.\(user.utf8.count)")
    }

    func connect(_ user: String, name: String? = nil, ip: String? = nil) async -> Peer {
        let identity = UserIdentity(id: user, name: name)!
        var info = Self.connection(of: user)
        if let ip { info.ip = ip }
        let outlet = FakeOutlet()
        let board = boards[placement.node(of: user, among: boards.count)]
        let peer = Peer(session: board.connect(identity, connection: info, outlet: outlet), outlet: outlet, board: board)
        await settle()
        return peer
    }

    func disconnect(_ peer: Peer) async {
        peer.board.disconnect(peer.session)
        await settle()
    }

    func send(_ message: ChatMessage, from peer: Peer) async {
        peer.board.receive(message, from: peer.session)
        await settle()
    }

    /// Sends a signal whose `content` is `json`.
    func signal(_ json: String, from peer: Peer, to recipient: String) async {
        peer.board.receive(signalMessage(to: recipient, json), from: peer.session)
        await settle()
    }

    /// Rings `callee` from `caller` with `callId` and empties both outlets.
    func ring(_ caller: Peer, _ callee: Peer, callId: String = "c1", callType: String = "audio") async {
        await signal(#"{"type":"call-invite","callId":"\#(callId)","callType":"\#(callType)"}"#, from: caller, to: callee.user)
        _ = caller.outlet.take()
        _ = callee.outlet.take()
    }

    /// Rings and accepts a call, emptying both outlets.
    func establish(_ caller: Peer, _ callee: Peer, callId: String = "c1") async {
        await ring(caller, callee, callId: callId)
        await signal(#"{"type":"call-accept","callId":"\#(callId)"}"#, from: callee, to: caller.user)
        _ = caller.outlet.take()
        _ = callee.outlet.take()
    }

    /// The ring timer of the most recent invite.
    var ringTimers: [ManualTimer] { scheduler.timers.filter { $0.delay == .seconds(60) } }
    /// Reconnect grace timers.
    var graceTimers: [ManualTimer] { scheduler.timers.filter { $0.delay == .seconds(10) } }
}

/// Which node each user of a test is on: in turn, by first connection.
private final class Placement: Sendable {
    private let nodes = Mutex<[String: Int]>([:])

    func node(of user: String, among count: Int) -> Int {
        nodes.withLock { nodes in
            if let node = nodes[user] { return node }
            let node = nodes.count % count
            nodes[user] = node
            return node
        }
    }
}
