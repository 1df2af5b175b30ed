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

/// The `storm` scenario on one event loop (every method runs there): a pool of connected pairs, and call
/// set-ups started at a fixed rate, each on a free pair: invite → accept → offer → answer → candidates both
/// ways → hangup.
final class Storm: ConnectionDelegate {
    struct Settings: Sendable {
        var url: WebSocketURL
        var secret: String
        var tag: String
        var pairs: Int
        var rate: Double
        var seconds: Double
        /// ICE candidates each party sends.
        var candidates = 10
        /// A call not hung up by then has failed (its pair is not used again).
        var callTimeout = TimeAmount.seconds(10)
        var connectConcurrency = 48
        /// Invites name their own `callId` (a node then checks that no record has it) instead of taking the
        /// server's from the relayed invite (none from the peer, which keeps no calls).
        var clientCallIds = false
    }

    struct Counts: Sendable {
        var started = 0
        var completed = 0
        var failed = 0
        /// Failed calls by what failed them (`call-failed busy`, `timeout awaiting answer`, …).
        var failures: [String: Int] = [:]
        /// Invite sent → call-accept at the caller (µs).
        var acceptP50: UInt64?
        var acceptP99: UInt64?
        /// Invite sent → the last candidate received by either party (µs).
        var candidatesP50: UInt64?
        var candidatesP99: UInt64?
        /// Frames this scenario does not wait for (other notices, signals of no live call), by type.
        var skipped: [String: Int] = [:]
        /// Calls that were due while no pair was free (they started later, on the next free pair).
        var delayedStarts = 0
        var elapsedSeconds = 0.0
    }

    private enum Step { case free, inviting, negotiating, hangingUp, retired }

    private final class Pair {
        let index: Int
        let caller: String
        let callee: String
        var step = Step.free
        /// The call's id, empty while the server has not named it (or never does: the peer).
        var callId = ""
        var invitedAt: UInt64 = 0
        var candidatesAtCaller = 0
        var candidatesAtCallee = 0
        var timeout: Scheduled<Void>?

        init(index: Int, caller: String, callee: String) {
            self.index = index
            self.caller = caller
            self.callee = callee
        }

        /// `,"callId":"…"` for the signals of the call, or nothing while it has no id.
        var idField: String { callId.isEmpty ? "" : #","callId":"\#(callId)""# }
    }

    private let settings: Settings
    private let loop: any EventLoop
    private let signer: JWTSigner
    private let allocator = ByteBufferAllocator()
    private var pairs: [Pair] = []
    /// Slot 2i is pair i's caller, 2i + 1 its callee.
    private var handlers: [BenchConnectionHandler<Storm>?] = []
    private var free: [Int] = []
    private var counts = Counts()
    private var acceptLatency = LatencyHistogram()
    private var candidatesLatency = LatencyHistogram()
    private var calls = 0
    private var due = 0
    private var backlog = 0
    private var inCall = 0
    private var sending = false
    private var closing = false
    private var startedAt = NIODeadline.now()
    private var tickTask: RepeatedTask?
    private var done: EventLoopPromise<Counts>?

    init(settings: Settings, loop: any EventLoop) {
        self.settings = settings
        self.loop = loop
        self.signer = JWTSigner(secret: settings.secret)
        for i in 0..<settings.pairs {
            pairs.append(Pair(index: i, caller: "\(settings.tag)a\(i)", callee: "\(settings.tag)b\(i)"))
        }
        handlers = Array(repeating: nil, count: 2 * settings.pairs)
        free = Array((0..<settings.pairs).reversed())
    }

    // MARK: - Connecting

    /// Connects every pair's two users, `connectConcurrency` upgrades at a time.
    func connect() -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        let users = pairs.flatMap { [$0.caller, $0.callee] }
        let expiresAt = Int64(time(nil)) + 3600 + Int64(settings.seconds)
        let me = NIOLoopBound(self, eventLoop: loop)
        var next = 0
        var open = 0
        func launch() {
            let slot = next
            next += 1
            let token = signer.token(user: users[slot], name: nil, avatar: nil, expiresAt: expiresAt)
            WebSocketClient.connect(on: loop, url: settings.url, token: token) { channel in
                try channel.pipeline.syncOperations.addHandler(BenchConnectionHandler(bench: me.value, slot: slot))
            }.assumeIsolated().whenComplete { result in
                switch result {
                case .success:
                    open += 1
                    if open == users.count {
                        promise.succeed()
                    } else if next < users.count {
                        launch()
                    }
                case .failure(let error):
                    next = users.count  // launch no more
                    promise.fail(BenchError.setup("cannot connect \(users[slot]) to \(self.settings.url): \(error)"))
                }
            }
        }
        for _ in 0..<min(settings.connectConcurrency, users.count) { launch() }
        return promise.futureResult
    }

    func attach(_ handler: BenchConnectionHandler<Storm>, to slot: Int) {
        handlers[slot] = handler
    }

    /// Closes every connection; completes when all are closed.
    func closeAll() -> EventLoopFuture<Void> {
        closing = true
        tickTask?.cancel()
        return EventLoopFuture.andAllComplete(handlers.compactMap { $0?.close() }, on: loop)
    }

    // MARK: - The storm

    /// Starts `rate × seconds` calls, evenly spread over the window; the future completes when every call has
    /// completed or failed.
    func run() -> EventLoopFuture<Counts> {
        let promise = loop.makePromise(of: Counts.self)
        done = promise
        calls = Int(settings.rate * settings.seconds)
        sending = true
        startedAt = .now()
        let tick = TimeAmount.nanoseconds(Int64(min(1e7, 1e9 / settings.rate)))
        let me = NIOLoopBound(self, eventLoop: loop)
        tickTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: tick) { _ in me.value.startDue() }
        return promise.futureResult
    }

    private func startDue() {
        let elapsed = Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9
        let target = min(calls, Int(elapsed * settings.rate) + 1)
        while due < target {
            due += 1
            if let pair = free.popLast() {
                invite(pairs[pair])
            } else {
                backlog += 1
                counts.delayedStarts += 1
            }
        }
        if due == calls {
            sending = false
            tickTask?.cancel()
            finishIfDone()
        }
    }

    private func invite(_ pair: Pair) {
        counts.started += 1
        inCall += 1
        pair.step = .inviting
        pair.callId = settings.clientCallIds ? "\(settings.tag)c\(counts.started)" : ""
        pair.candidatesAtCaller = 0
        pair.candidatesAtCallee = 0
        pair.invitedAt = LatencyHistogram.nowMicroseconds
        pair.timeout = loop.assumeIsolated().scheduleTask(in: settings.callTimeout) {
            self.fail(pair, "timeout while \(pair.step)")
        }
        send(from: 2 * pair.index, to: pair.callee, [#"{"type":"call-invite"\#(pair.idField),"callType":"audio"}"#])
    }

    private func end(_ pair: Pair, failure: String?) {
        pair.timeout?.cancel()
        inCall -= 1
        if let failure {
            counts.failed += 1
            counts.failures[failure, default: 0] += 1
            pair.step = .retired  // what the server still holds of its call is unknown
        } else {
            counts.completed += 1
            pair.step = .free
            if backlog > 0 {
                backlog -= 1
                invite(pair)
            } else {
                free.append(pair.index)
            }
        }
        finishIfDone()
    }

    private func fail(_ pair: Pair, _ why: String) {
        guard pair.step != .free, pair.step != .retired else { return }
        end(pair, failure: why)
    }

    private func finishIfDone() {
        guard !sending, inCall == 0, let done else { return }
        if backlog > 0 {  // due while every pair was busy, and no pair is left to run them
            counts.failed += backlog
            counts.failures["no usable pair", default: 0] += backlog
            backlog = 0
        }
        counts.elapsedSeconds = Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9
        counts.acceptP50 = acceptLatency.percentile(50)
        counts.acceptP99 = acceptLatency.percentile(99)
        counts.candidatesP50 = candidatesLatency.percentile(50)
        counts.candidatesP99 = candidatesLatency.percentile(99)
        self.done = nil
        done.succeed(counts)
    }

    // MARK: - Receiving

    func received(_ data: ByteBuffer, on slot: Int) {
        guard let message = try? ChatMessage(serializedBytes: Array(data.readableBytesView)),
            message.contentType == 6
        else {
            skip("not a signal")
            return
        }
        let type = Wire.rawStringField("type", in: message.content).map(String.init) ?? "(no type)"
        let pair = pairs[slot / 2]
        let atCaller = slot % 2 == 0
        let live = pair.step != .free && pair.step != .retired
        guard !message.from.isEmpty else {  // a server notice
            switch type {
            case "call-failed" where live, "error" where live:
                let reason = Wire.rawStringField("reason", in: message.content) ?? "?"
                fail(pair, "\(type) \(reason)")
            default:
                skip(type)  // call-ringing, ice-servers, …
            }
            return
        }
        let callId = Wire.rawStringField("callId", in: message.content) ?? ""
        let naming = type == "call-invite" && !atCaller && pair.step == .inviting && !settings.clientCallIds
        guard live, naming || callId == Substring(pair.callId) else {
            skip("\(type) of no live call")
            return
        }
        if naming { pair.callId = String(callId) }  // the server's id, from now on in every signal
        let index = pair.index
        let now = LatencyHistogram.nowMicroseconds
        switch (type, atCaller) {
        case ("call-invite", false):
            send(from: 2 * index + 1, to: pair.caller, [#"{"type":"call-accept"\#(pair.idField)}"#])
        case ("call-accept", true):
            acceptLatency.record(from: pair.invitedAt, to: now)
            pair.step = .negotiating
            send(from: 2 * index, to: pair.callee, [SDP.signal("offer", idField: pair.idField)])
        case ("offer", false):
            send(from: 2 * index + 1, to: pair.caller, [SDP.signal("answer", idField: pair.idField)] + candidates(pair))
        case ("answer", true):
            send(from: 2 * index, to: pair.callee, candidates(pair))
        case ("ice-candidate", true):
            pair.candidatesAtCaller += 1
            allCandidatesIn(pair, now: now)
        case ("ice-candidate", false):
            pair.candidatesAtCallee += 1
            allCandidatesIn(pair, now: now)
        case ("call-hangup", false) where pair.step == .hangingUp:
            end(pair, failure: nil)
        default:
            skip("\(type) at the \(atCaller ? "caller" : "callee")")
        }
    }

    /// Once both parties have every candidate: the set-up is done and the caller hangs up.
    private func allCandidatesIn(_ pair: Pair, now: UInt64) {
        let wanted = settings.candidates
        guard pair.candidatesAtCaller == wanted, pair.candidatesAtCallee == wanted, pair.step == .negotiating else {
            return
        }
        candidatesLatency.record(from: pair.invitedAt, to: now)
        pair.step = .hangingUp
        send(from: 2 * pair.index, to: pair.callee, [#"{"type":"call-hangup"\#(pair.idField)}"#])
    }

    private func candidates(_ pair: Pair) -> [String] {
        (0..<settings.candidates).map { k in
            #"{"type":"ice-candidate"\#(pair.idField),"candidate":{"candidate":"candidate:\#(k) 1 udp 2122260223 192.0.2.\#(k + 1) \#(50000 + k) typ host generation 0","sdpMid":"0","sdpMLineIndex":0}}"#
        }
    }

    /// Writes `contents` as signals to `user` and flushes once.
    private func send(from slot: Int, to user: String, _ contents: [String]) {
        guard let handler = handlers[slot] else { return }
        for content in contents {
            guard let bytes = try? Wire.signalMessage(to: user, content: content) else { continue }
            var buffer = allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            handler.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: WebSocketClient.maskKey, data: buffer))
        }
        handler.flush()
    }

    private func skip(_ what: String) {
        counts.skipped[what, default: 0] += 1
    }

    func readComplete(on slot: Int) {}

    func receivedTextFrame(on slot: Int) { skip("text frame") }

    func serverClosed(slot: Int, code: Int) {
        if !closing { skip("closed by the server, code \(code)") }
    }

    func inactive(slot: Int) {
        handlers[slot] = nil
        guard !closing else { return }
        let pair = pairs[slot / 2]
        if pair.step == .free, let at = free.firstIndex(of: slot / 2) { free.remove(at: at) }
        fail(pair, "connection closed")
        pair.step = .retired
    }

    func connectionError(_ error: any Error, slot: Int) {
        if !closing { skip("connection error") }
    }
}

/// A short but real-looking audio session description, as a signal's `offer` or `answer` member.
enum SDP {
    static let audio =
        #"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"#
        + #"a=msid-semantic: WMS stream\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"#
        + #"c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Zq3v\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n"#
        + #"a=ice-options:trickle\r\na=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:"#
        + #"21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\n"#
        + #"a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"#

    /// An `offer` or `answer` signal; `idField` as ``Storm/Pair/idField``.
    static func signal(_ type: String, idField: String) -> String {
        #"{"type":"\#(type)"\#(idField),"\#(type)":{"type":"\#(type)","sdp":"\#(audio)"}}"#
    }
}
