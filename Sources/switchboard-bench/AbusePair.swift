import Histogram
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

/// The three windows of an abuse run: before the attack, during it, after the attackers left.
enum AbusePhase: Int, CaseIterable, Sendable {
    case quiet, attack, after

    var name: String {
        switch self {
        case .quiet: "quiet"
        case .attack: "attack"
        case .after: "after"
        }
    }
}

/// What the well-behaved pair saw in one phase (messages and calls counted by the phase they started in).
struct PairCounts: Sendable {
    var sent = 0
    var received = 0
    var p50: UInt64?
    var p99: UInt64?
    var maxLatency: UInt64?
    var callsStarted = 0
    var callsCompleted = 0
    var callsFailed = 0
    /// Invite to accept at the caller, the slowest of the phase (µs).
    var slowestCallSetup: UInt64 = 0
    var healthzOK = 0
    var healthzFailed = 0
    /// The slowest `/healthz` answer (µs).
    var slowestHealthz: UInt64 = 0
    /// Server notices and anything else unexpected, by what they were (`error rate-limited`, …).
    var notices: [String: Int] = [:]
    /// The slowest round trips (at most 5): when they were sent (seconds since the pair started) and how long
    /// they took (µs), slowest first.
    var slowest: [(at: Double, us: UInt64)] = []

    var lost: Int { sent - received }
}

/// The well-behaved pair of an abuse run, on its own event loop: user A sends text messages carrying their
/// send time to B at a fixed rate and B echoes each one back (round trip = what A measures); every
/// `callInterval` A calls B (invite, accept, hangup); and a `/healthz` request goes out twice a second.
final class AbusePair: ConnectionDelegate {
    struct Settings: Sendable {
        var url: WebSocketURL
        var secret: String
        var callerUser: String
        var calleeUser: String
        /// Round trips per second (each user sends this many messages a second).
        var rate: Double
        var callInterval: Double
    }

    private enum CallState { case none, inviting, accepting }

    private let settings: Settings
    let loop: any EventLoop
    private let signer: JWTSigner
    private let allocator = ByteBufferAllocator()
    private var handlers: [BenchConnectionHandler<AbusePair>?] = [nil, nil]
    private let callerBytes: [UInt8]
    private let calleeBytes: [UInt8]
    private let pad = Array(repeating: UInt8(ascii: "x"), count: 80)

    private(set) var phase = AbusePhase.quiet
    private var counts = Array(repeating: PairCounts(), count: AbusePhase.allCases.count)
    private var histograms: [Histogram<UInt64>]
    private var sending = false
    private var closing = false
    private var seq: UInt64 = 0
    private var startedAt: UInt64 = 0
    private var sendTask: RepeatedTask?
    private var callTask: RepeatedTask?
    private var healthzTask: RepeatedTask?

    private var callState = CallState.none
    private var callPhase = AbusePhase.quiet
    private var callStartedAt: UInt64 = 0
    private var callTimeout: Scheduled<Void>?
    /// Set when a connection of the pair was closed by the node: the pair is no longer well served.
    private(set) var dropped: [String] = []

    init(settings: Settings, loop: any EventLoop) {
        self.settings = settings
        self.loop = loop
        self.signer = JWTSigner(secret: settings.secret)
        self.callerBytes = Array(settings.callerUser.utf8)
        self.calleeBytes = Array(settings.calleeUser.utf8)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        self.histograms = Array(repeating: histogram, count: AbusePhase.allCases.count)
    }

    private static var nowMicroseconds: UInt64 { NIODeadline.now().uptimeNanoseconds / 1000 }

    // MARK: - Connecting and phases

    /// Connects A (slot 0) and B (slot 1).
    func connect() -> EventLoopFuture<Void> {
        let expiresAt = Int64(time(nil)) + 3600
        let me = NIOLoopBound(self, eventLoop: loop)
        let futures = [settings.callerUser, settings.calleeUser].enumerated().map { slot, user in
            WebSocketClient.connect(
                on: loop,
                url: settings.url,
                token: signer.token(user: user, name: nil, avatar: nil, expiresAt: expiresAt)
            ) { channel in
                try channel.pipeline.syncOperations.addHandler(BenchConnectionHandler(bench: me.value, slot: slot))
            }
        }
        return EventLoopFuture.andAllSucceed(futures, on: loop)
    }

    /// Starts the messages, the calls and the `/healthz` probe.
    func start() {
        sending = true
        startedAt = Self.nowMicroseconds
        let me = NIOLoopBound(self, eventLoop: loop)
        let interval = TimeAmount.nanoseconds(Int64(1e9 / settings.rate))
        sendTask = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in me.value.sendOne() }
        let callEvery = TimeAmount.nanoseconds(Int64(settings.callInterval * 1e9))
        callTask = loop.scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: callEvery) { _ in
            me.value.startCall()
        }
        healthzTask = loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(500)) { _ in
            me.value.probeHealthz()
        }
    }

    func enter(_ next: AbusePhase) {
        phase = next
    }

    /// Stops sending; the counts are complete `drain` later (what was in flight still counts).
    func stop(drain: TimeAmount) -> EventLoopFuture<[PairCounts]> {
        sending = false
        sendTask?.cancel()
        callTask?.cancel()
        healthzTask?.cancel()
        let promise = loop.makePromise(of: [PairCounts].self)
        loop.assumeIsolated().scheduleTask(in: drain) {
            self.closing = true
            self.callTimeout?.cancel()
            for (index, histogram) in self.histograms.enumerated() where histogram.totalCount > 0 {
                self.counts[index].p50 = histogram.valueAtPercentile(50)
                self.counts[index].p99 = histogram.valueAtPercentile(99)
                self.counts[index].maxLatency = histogram.max
            }
            promise.succeed(self.counts)
        }
        return promise.futureResult
    }

    func closeAll() -> EventLoopFuture<Void> {
        closing = true
        return EventLoopFuture.andAllComplete(handlers.compactMap { $0?.close() }, on: loop)
    }

    // MARK: - Messages

    /// A's next timed text to B: `<send time µs> <phase> <seq>` and some padding.
    private func sendOne() {
        guard sending, let handler = handlers[0] else { return }
        var content: [UInt8] = []
        content.reserveCapacity(128)
        Wire.appendDecimal(Self.nowMicroseconds, to: &content)
        content.append(UInt8(ascii: " "))
        Wire.appendDecimal(UInt64(phase.rawValue), to: &content)
        content.append(UInt8(ascii: " "))
        Wire.appendDecimal(seq, to: &content)
        content.append(UInt8(ascii: " "))
        content.append(contentsOf: pad)
        seq += 1
        write(content, contentType: 1, to: calleeBytes, on: handler)
        counts[phase.rawValue].sent += 1
    }

    private func write(_ content: [UInt8], contentType: Int32, to user: [UInt8], on handler: BenchConnectionHandler<AbusePair>) {
        var buffer = allocator.buffer(capacity: content.count + user.count + 16)
        Wire.writeDirectMessage(to: user, content: content, contentType: contentType, into: &buffer)
        handler.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: WebSocketClient.maskKey, data: buffer))
        handler.flush()
    }

    private func sendSignal(from slot: Int, to user: String, content: String) {
        guard let handler = handlers[slot] else { return }
        write(Array(content.utf8), contentType: 6, to: Array(user.utf8), on: handler)
    }

    func received(_ data: ByteBuffer, on slot: Int) {
        guard let message = try? ChatMessage(serializedBytes: Array(data.readableBytesView)) else {
            note("undecodable frame")
            return
        }
        switch (message.contentType, slot) {
        case (1, 1) where message.from == settings.callerUser:
            // B: echo it back as it came.
            if let handler = handlers[1] { write(Array(message.content.utf8), contentType: 1, to: callerBytes, on: handler) }
        case (1, 0) where message.from == settings.calleeUser:
            let fields = message.content.split(separator: " ", maxSplits: 3)
            guard fields.count >= 2, let sentAt = UInt64(fields[0]), let raw = Int(fields[1]),
                let sentIn = AbusePhase(rawValue: raw)
            else {
                note("malformed echo")
                return
            }
            let now = Self.nowMicroseconds
            counts[sentIn.rawValue].received += 1
            let took = now > sentAt ? now - sentAt : 0
            histograms[sentIn.rawValue].record(took)
            noteSlow(took, sentAt: sentAt, phase: sentIn)
        case (6, _):
            signal(message, on: slot)
        default:
            note("unexpected contentType \(message.contentType) at \(slot == 0 ? "A" : "B")")
        }
    }

    private func noteSlow(_ took: UInt64, sentAt: UInt64, phase: AbusePhase) {
        var slowest = counts[phase.rawValue].slowest
        guard slowest.count < 5 || took > slowest[slowest.count - 1].us else { return }
        slowest.append((Double(sentAt &- startedAt) / 1e6, took))
        slowest.sort { $0.us > $1.us }
        if slowest.count > 5 { slowest.removeLast() }
        counts[phase.rawValue].slowest = slowest
    }

    // MARK: - Calls

    private func startCall() {
        guard sending, callState == .none else { return }
        callState = .inviting
        callPhase = phase
        callStartedAt = Self.nowMicroseconds
        counts[callPhase.rawValue].callsStarted += 1
        sendSignal(from: 0, to: settings.calleeUser, content: #"{"type":"call-invite","callType":"audio"}"#)
        callTimeout = loop.assumeIsolated().scheduleTask(in: .seconds(5)) {
            self.endCall(ok: false, why: "no accept within 5 s")
        }
    }

    private func endCall(ok: Bool, why: String? = nil) {
        guard callState != .none else { return }
        callState = .none
        callTimeout?.cancel()
        if ok {
            counts[callPhase.rawValue].callsCompleted += 1
            let took = Self.nowMicroseconds - callStartedAt
            counts[callPhase.rawValue].slowestCallSetup = max(counts[callPhase.rawValue].slowestCallSetup, took)
        } else {
            counts[callPhase.rawValue].callsFailed += 1
            if let why { counts[callPhase.rawValue].notices["call failed: \(why)", default: 0] += 1 }
        }
    }

    private func signal(_ message: ChatMessage, on slot: Int) {
        let type = Wire.rawStringField("type", in: message.content).map(String.init) ?? "(no type)"
        let callId = Wire.rawStringField("callId", in: message.content).map(String.init) ?? ""
        if message.from.isEmpty {  // a server notice
            let reason = Wire.rawStringField("reason", in: message.content).map(String.init)
            switch type {
            case "call-ringing", "ice-servers":  // ice-servers: every connection's first frame (PROTOCOL.md §8)
                break
            case "call-failed" where slot == 0:
                endCall(ok: false, why: "call-failed \(reason ?? "?")")
            default:
                note(reason.map { "\(type) \($0)" } ?? type)
            }
            return
        }
        switch (type, slot) {
        case ("call-invite", 1):
            sendSignal(from: 1, to: settings.callerUser, content: #"{"type":"call-accept","callId":"\#(callId)"}"#)
        case ("call-accept", 0) where callState == .inviting:
            endCall(ok: true)
            sendSignal(from: 0, to: settings.calleeUser, content: #"{"type":"call-hangup","callId":"\#(callId)"}"#)
        case ("call-hangup", 1):
            break
        default:
            note("relayed \(type) at \(slot == 0 ? "A" : "B")")
        }
    }

    // MARK: - /healthz

    /// One `GET /healthz` on a fresh connection; a 200 within 2 s counts as served.
    private func probeHealthz() {
        guard sending else { return }
        let sentIn = phase
        let started = Self.nowMicroseconds
        let me = NIOLoopBound(self, eventLoop: loop)
        HTTPProbe.get(on: loop, url: settings.url, path: "/healthz", timeout: .seconds(2))
            .assumeIsolated()
            .whenComplete { result in
                let pair = me.value
                if case .success(200) = result {
                    pair.counts[sentIn.rawValue].healthzOK += 1
                    let took = Self.nowMicroseconds - started
                    pair.counts[sentIn.rawValue].slowestHealthz = max(pair.counts[sentIn.rawValue].slowestHealthz, took)
                } else {
                    pair.counts[sentIn.rawValue].healthzFailed += 1
                }
            }
    }

    // MARK: - ConnectionDelegate

    func attach(_ handler: BenchConnectionHandler<AbusePair>, to slot: Int) {
        handlers[slot] = handler
    }

    func readComplete(on slot: Int) {}

    func receivedTextFrame(on slot: Int) {
        note("text frame")
    }

    func serverClosed(slot: Int, code: Int) {
        if !closing { dropped.append("\(slot == 0 ? settings.callerUser : settings.calleeUser) closed \(code)") }
    }

    func inactive(slot: Int) {
        handlers[slot] = nil
        let user = slot == 0 ? settings.callerUser : settings.calleeUser
        if !closing, !dropped.contains(where: { $0.hasPrefix(user + " ") }) { dropped.append("\(user) disconnected") }
    }

    func connectionError(_ error: any Error, slot: Int) {
        if !closing { note("connection error: \(error)") }
    }

    private func note(_ what: String) {
        counts[phase.rawValue].notices[what, default: 0] += 1
    }
}
