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

enum MessageKind: String, Sendable, CaseIterable {
    case signal, text
}

/// What one run is asked to do.
struct BenchSettings: Sendable {
    var sendURL: WebSocketURL
    var recvURL: WebSocketURL?
    var pairs: Int
    var rate: Double
    var seconds: Double
    var size: Int
    var window: Int
    var kind: MessageKind
    var secret: String
    var tag: String
    var connectConcurrency = 48
    /// Invites per pair before the set-up gives up (presence can lag a fresh connection, see wsload).
    var maxInvites = 50
}

/// Counts and latency percentiles of the measured window (plus its 0.5 s drain).
struct RunCounts: Sendable {
    var sent = 0
    var received = 0
    var errors = 0
    var elapsedSeconds = 0.0
    var p50: UInt64?
    var p99: UInt64?
    var p999: UInt64?
    var maxLatency: UInt64?
    /// `error` notices by reason.
    var errorReasons: [String: Int] = [:]
    /// Anything else unexpected while measuring: other notices, relayed signals, undecodable frames.
    var notices: [String: Int] = [:]
    var closedByServer = 0
    var closeCodes: [Int: Int] = [:]
}

/// The futures of one measurement: `stopped` completes when sending stops (the end of the measured window),
/// `finished` after the drain.
struct Measurement: Sendable {
    let stopped: EventLoopFuture<Void>
    let finished: EventLoopFuture<RunCounts>
}

/// The load generator's state. It lives on one event loop: every method runs there (the async command hops
/// in with `submit`/`flatSubmit` and holds it only through `NIOLoopBound`), so there are no locks and no
/// tasks per message.
final class Bench: ConnectionDelegate {
    enum Role { case caller, callee, idle }

    final class Slot {
        let user: String
        let role: Role
        let pair: Int
        var handler: BenchConnectionHandler<Bench>?
        var open = false

        init(user: String, role: Role, pair: Int) {
            self.user = user
            self.role = role
            self.pair = pair
        }
    }

    enum Phase { case idle, inviting, accepting, ready, failed }

    final class Pair {
        let index: Int
        let caller: Int
        let callee: Int
        let callerUser: String
        let calleeUser: String
        let calleeBytes: [UInt8]
        /// `{"type":"ice-candidate","callId":"…","candidate":{"candidate":"candidate:` once the call is set up.
        var signalHead: [UInt8] = []
        var seq: UInt64 = 0
        var inflight = 0
        var needsFlush = false

        var phase = Phase.idle
        var invites = 0
        var retryPending = false
        var attemptTimer: Scheduled<Void>?
        var deadline: Scheduled<Void>?
        var lastFailure = "no answer"
        var setup: EventLoopPromise<Void>?

        init(index: Int, caller: Int, callee: Int, callerUser: String, calleeUser: String) {
            self.index = index
            self.caller = caller
            self.callee = callee
            self.callerUser = callerUser
            self.calleeUser = calleeUser
            self.calleeBytes = Array(calleeUser.utf8)
        }
    }

    let settings: BenchSettings
    let loop: any EventLoop
    let signer: JWTSigner
    private let allocator = ByteBufferAllocator()
    private let expiresAt: Int64

    private(set) var slots: [Slot] = []
    private var pairs: [Pair] = []

    // Connecting
    private var connectQueue: [(slot: Int, url: WebSocketURL)] = []
    private var connectNext = 0
    private var connectInFlight = 0
    private var connectDone = 0
    private var connectPromise: EventLoopPromise<Void>?

    // Measuring
    private var measuring = false
    private var sending = false
    private var closing = false
    private var counts = RunCounts()
    private var histogram: Histogram<UInt64>
    private var t0 = NIODeadline.now()
    private var stopAt = NIODeadline.now()
    private var due = 0
    private var roundRobin = 0
    private var tickTask: Scheduled<Void>?
    private var touched: [Int] = []
    private var scratch: [UInt8] = []
    private let pad: [UInt8]
    private let isText: Bool
    private let window: Int
    /// The pacing tick: one message interval (1/rate), but at least 0.1 ms (bounded wake-ups) and at most 1 ms
    /// (bursts of at most 1 ms worth of messages).
    private let tickNanoseconds: Int64
    /// Notices seen before the measured window (set-up), reported on standard error.
    private(set) var setupNotices: [String: Int] = [:]

    private static let candidateMiddle = Array(" 1 udp 2122260223 192.0.2.1 ".utf8)
    private static let candidateAfterTime = Array(" typ host ".utf8)
    private static let candidateTail = Array(#"","sdpMid":"0","sdpMLineIndex":0}}"#.utf8)

    init(settings: BenchSettings, loop: any EventLoop) {
        self.settings = settings
        self.loop = loop
        self.signer = JWTSigner(secret: settings.secret)
        self.expiresAt = Int64(time(nil)) + 3600 + Int64(settings.seconds)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        self.histogram = histogram
        // wsload's padding: the message is about --size bytes on the wire.
        self.pad = Array(repeating: UInt8(ascii: "x"), count: max(0, min(settings.size - 120, 1 << 20)))
        self.isText = settings.kind == .text
        self.window = settings.rate > 0 ? 0 : settings.window
        self.tickNanoseconds = settings.rate > 0 ? Int64(min(1e6, max(1e5, 1e9 / settings.rate))) : 1_000_000
        self.scratch.reserveCapacity(pad.count + 512)
    }

    // MARK: - Connecting

    /// Creates the pairs' users (`<tag>a<i>` on --url, `<tag>b<i>` on --recv-url) and connects them all.
    func openPairs() -> EventLoopFuture<Void> {
        let receiveURL = settings.recvURL ?? settings.sendURL
        for i in 0..<settings.pairs {
            let callerUser = "\(settings.tag)a\(i)"
            let calleeUser = "\(settings.tag)b\(i)"
            slots.append(Slot(user: callerUser, role: .caller, pair: i))
            slots.append(Slot(user: calleeUser, role: .callee, pair: i))
            pairs.append(
                Pair(
                    index: i,
                    caller: slots.count - 2,
                    callee: slots.count - 1,
                    callerUser: callerUser,
                    calleeUser: calleeUser
                )
            )
            connectQueue.append((slots.count - 2, settings.sendURL))
            connectQueue.append((slots.count - 1, receiveURL))
        }
        return connectAll()
    }

    /// `--idle`: `count` silent users `<tag>u<k>`, alternating between --url and --recv-url (as loadgen.js).
    func openIdle(count: Int) -> EventLoopFuture<Void> {
        let urls = [settings.sendURL, settings.recvURL ?? settings.sendURL]
        for k in 0..<count {
            slots.append(Slot(user: "\(settings.tag)u\(k)", role: .idle, pair: -1))
            connectQueue.append((slots.count - 1, urls[k % 2]))
        }
        return connectAll()
    }

    private func connectAll() -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        connectPromise = promise
        if connectQueue.isEmpty {
            promise.succeed()
        } else {
            pumpConnects()
        }
        return promise.futureResult
    }

    /// Keeps `connectConcurrency` upgrades in flight (a burst of thousands of SYNs overflows the listen backlog).
    private func pumpConnects() {
        while connectInFlight < settings.connectConcurrency && connectNext < connectQueue.count {
            let (slot, url) = connectQueue[connectNext]
            connectNext += 1
            connectInFlight += 1
            connect(slot: slot, user: slots[slot].user, url: url, expiresAt: expiresAt)
                .assumeIsolated()
                .whenComplete { result in
                    self.connectInFlight -= 1
                    switch result {
                    case .success:
                        self.connectDone += 1
                        if self.connectDone == self.connectQueue.count {
                            self.connectPromise?.succeed()
                        } else {
                            self.pumpConnects()
                        }
                    case .failure(let error):
                        self.connectNext = self.connectQueue.count  // launch no more
                        self.connectPromise?.fail(
                            BenchError.setup("cannot connect \(self.slots[slot].user) to \(url): \(error)")
                        )
                    }
                }
        }
    }

    func attach(_ handler: BenchConnectionHandler<Bench>, to slot: Int) {
        slots[slot].handler = handler
        slots[slot].open = true
    }

    var openConnections: Int { slots.reduce(0) { $0 + ($1.open ? 1 : 0) } }

    /// Closes every connection; completes when all are closed.
    func closeAll() -> EventLoopFuture<Void> {
        closing = true
        tickTask?.cancel()
        let closes = slots.compactMap { $0.handler?.close() }
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }

    // MARK: - Call set-up

    /// Sets up one call per pair, all pairs at once: invite, wait for the callee to get it, accept, wait for the
    /// caller to get the accept; an invite answered with `call-failed` is retried 50 ms later.
    func setUpCalls() -> EventLoopFuture<Void> {
        var futures: [EventLoopFuture<Void>] = []
        futures.reserveCapacity(pairs.count)
        for pair in pairs {
            let promise = loop.makePromise(of: Void.self)
            pair.setup = promise
            futures.append(promise.futureResult)
            pair.deadline = loop.assumeIsolated().scheduleTask(in: .seconds(20)) {
                self.failSetup(pair, "no call after 20 s")
            }
            sendInvite(pair)
        }
        return EventLoopFuture.andAllSucceed(futures, on: loop)
    }

    private func sendInvite(_ pair: Pair) {
        pair.phase = .inviting
        pair.invites += 1
        sendSignal(from: pair.caller, to: pair.calleeUser, content: #"{"type":"call-invite","callType":"audio"}"#)
        pair.attemptTimer?.cancel()
        pair.attemptTimer = loop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            guard pair.phase == .inviting, !pair.retryPending else { return }
            pair.lastFailure = "the callee got no call-invite within 1 s"
            self.retryInvite(pair)
        }
    }

    private func retryInvite(_ pair: Pair) {
        guard pair.invites < settings.maxInvites else {
            failSetup(pair, "gave up after \(pair.invites) invites")
            return
        }
        pair.retryPending = true
        loop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
            pair.retryPending = false
            if pair.phase == .inviting { self.sendInvite(pair) }
        }
    }

    private func failSetup(_ pair: Pair, _ why: String) {
        guard pair.phase != .ready, pair.phase != .failed else { return }
        pair.phase = .failed
        pair.attemptTimer?.cancel()
        pair.deadline?.cancel()
        pair.setup?.fail(
            BenchError.setup(
                "call set-up failed for \(pair.callerUser) -> \(pair.calleeUser): \(why) (last: \(pair.lastFailure))"
            )
        )
    }

    private func sendSignal(from slot: Int, to user: String, content: String) {
        guard let handler = slots[slot].handler else { return }
        do {
            let bytes = try Wire.signalMessage(to: user, content: content)
            var buffer = allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            handler.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: WebSocketClient.maskKey, data: buffer))
            handler.flush()
        } catch {
            note("cannot serialize a ChatMessage: \(error)")
        }
    }

    // MARK: - Receiving

    /// A binary frame on `slotIndex`. The hot path (a timed message at a callee) is scanned by hand; anything
    /// else is decoded as a `ChatMessage`.
    func received(_ data: ByteBuffer, on slotIndex: Int) {
        let slot = slots[slotIndex]
        if slot.role == .callee {
            let now = NIODeadline.now().uptimeNanoseconds / 1000
            let sentAt = data.withUnsafeReadableBytes { self.sendTime(in: $0) }
            if let sentAt {
                let pair = pairs[slot.pair]
                pair.inflight -= 1
                if measuring {
                    counts.received += 1
                    histogram.record(now > sentAt ? now - sentAt : 0)
                }
                if sending && window > 0 && pair.inflight < window {
                    sendOne(pair)
                    pair.needsFlush = true  // flushed in readComplete, once per read
                }
                return
            }
        }
        control(data, on: slot)
    }

    /// The send time (µs) carried by a message this tool streams, or nil for anything else.
    @inline(__always)
    private func sendTime(in raw: UnsafeRawBufferPointer) -> UInt64? {
        guard let fields = Wire.scan(raw) else { return nil }
        let end = fields.contentStart + fields.contentLength
        if isText {
            guard fields.contentType == 1 else { return nil }
            return Wire.readDecimal(raw, from: fields.contentStart, end: end)
        }
        guard fields.contentType == 6,
            let at = Wire.find(Wire.marker, in: raw, from: fields.contentStart, end: end)
        else { return nil }
        return Wire.readDecimal(raw, from: at + Wire.marker.count, end: end)
    }

    func readComplete(on slotIndex: Int) {
        let slot = slots[slotIndex]
        guard slot.role == .callee else { return }
        let pair = pairs[slot.pair]
        if pair.needsFlush {
            pair.needsFlush = false
            slots[pair.caller].handler?.flush()
        }
    }

    private func control(_ data: ByteBuffer, on slot: Slot) {
        let message: ChatMessage
        do {
            message = try ChatMessage(serializedBytes: Array(data.readableBytesView))
        } catch {
            note("undecodable binary frame")
            return
        }
        guard message.contentType == 6 else {
            note("unexpected message, contentType \(message.contentType)")
            return
        }
        let type = Wire.rawStringField("type", in: message.content).map(String.init) ?? "(no type)"
        let pair = slot.pair >= 0 ? pairs[slot.pair] : nil
        if message.from.isEmpty {
            let reason = Wire.rawStringField("reason", in: message.content).map(String.init)
            switch type {
            case "error":
                if measuring {
                    counts.errors += 1
                    counts.errorReasons[reason ?? "?", default: 0] += 1
                } else {
                    note("error \(reason ?? "?")")
                }
            case "call-failed":
                if let pair, slot.role == .caller, pair.phase == .inviting {
                    pair.lastFailure = "call-failed \(reason ?? "?")"
                    pair.attemptTimer?.cancel()
                    if !pair.retryPending { retryInvite(pair) }
                } else if measuring {
                    note("call-failed \(reason ?? "?")")
                }  // else: the busy answer to a repeated invite while the first one rings: expected
            case "call-ringing" where !measuring:
                break
            case "ice-servers":
                break  // every connection's first frame (PROTOCOL.md §8)
            default:
                note(reason.map { "\(type) \($0)" } ?? type)
            }
            return
        }
        guard let pair else {
            note("relayed \(type) to an idle user")
            return
        }
        switch (type, slot.role) {
        case ("call-invite", .callee) where pair.phase == .inviting:
            // PROTOCOL.md: the relayed invite carries the callId. A peer that keeps no call state sends none;
            // go on like wsload (an empty callId), but say so.
            let callId = Wire.rawStringField("callId", in: message.content) ?? ""
            if callId.isEmpty { note("call-invite without callId") }
            pair.phase = .accepting
            pair.attemptTimer?.cancel()
            pair.signalHead = Array(#"{"type":"ice-candidate","callId":"\#(callId)","candidate":{"candidate":"candidate:"#.utf8)
            sendSignal(from: pair.callee, to: pair.callerUser, content: #"{"type":"call-accept","callId":"\#(callId)"}"#)
        case ("call-accept", .caller) where pair.phase == .accepting:
            pair.phase = .ready
            pair.deadline?.cancel()
            pair.setup?.succeed()
        default:
            note("relayed \(type) at the \(slot.role == .caller ? "caller" : "callee") (\(pair.phase))")
        }
    }

    func receivedTextFrame(on slot: Int) {
        note("text frame from the server")
    }

    private func note(_ what: String) {
        if measuring {
            counts.notices[what, default: 0] += 1
        } else {
            setupNotices[what, default: 0] += 1
        }
    }

    func serverClosed(slot: Int, code: Int) {
        if !closing { counts.closeCodes[code, default: 0] += 1 }
    }

    func inactive(slot index: Int) {
        let slot = slots[index]
        guard slot.open else { return }
        slot.open = false
        guard !closing else { return }
        counts.closedByServer += 1
        if slot.pair >= 0 {
            let pair = pairs[slot.pair]
            if pair.phase != .ready { failSetup(pair, "the server closed \(slot.user)'s connection") }
        }
    }

    func connectionError(_ error: any Error, slot: Int) {
        if !closing { note("connection error: \(error)") }
    }

    // MARK: - Sending

    /// One timed message from the pair's caller to its callee (queued; the caller flushes).
    @inline(__always)
    private func sendOne(_ pair: Pair) {
        guard let handler = slots[pair.caller].handler else { return }
        let now = NIODeadline.now().uptimeNanoseconds / 1000
        let seq = pair.seq
        pair.seq += 1
        scratch.removeAll(keepingCapacity: true)
        if isText {
            Wire.appendDecimal(now, to: &scratch)
            scratch.append(UInt8(ascii: " "))
            Wire.appendDecimal(seq, to: &scratch)
            scratch.append(UInt8(ascii: " "))
            scratch.append(contentsOf: pad)
        } else {
            scratch.append(contentsOf: pair.signalHead)
            Wire.appendDecimal(seq, to: &scratch)
            scratch.append(contentsOf: Self.candidateMiddle)
            Wire.appendDecimal(now, to: &scratch)
            scratch.append(contentsOf: Self.candidateAfterTime)
            scratch.append(contentsOf: pad)
            scratch.append(contentsOf: Self.candidateTail)
        }
        var buffer = allocator.buffer(capacity: scratch.count + pair.calleeBytes.count + 16)
        Wire.writeDirectMessage(to: pair.calleeBytes, content: scratch, contentType: isText ? 1 : 6, into: &buffer)
        handler.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: WebSocketClient.maskKey, data: buffer))
        pair.inflight += 1
        if measuring { counts.sent += 1 }
    }

    /// Starts the measured window: at --rate 0 a window of messages in flight per pair, else paced sends.
    func startMeasuring() -> Measurement {
        let stopped = loop.makePromise(of: Void.self)
        let finished = loop.makePromise(of: RunCounts.self)
        counts = RunCounts()
        histogram.reset()
        measuring = true
        sending = true
        t0 = .now()
        stopAt = t0 + .nanoseconds(Int64(settings.seconds * 1e9))
        if settings.rate > 0 {
            due = 0
            roundRobin = 0
            tick()
        } else {
            for pair in pairs {
                for _ in 0..<window { sendOne(pair) }
                slots[pair.caller].handler?.flush()
            }
        }
        loop.assumeIsolated().scheduleTask(deadline: stopAt) {
            self.stop(stopped: stopped, finished: finished)
        }
        return Measurement(stopped: stopped.futureResult, finished: finished.futureResult)
    }

    /// Paced mode: every tick, send the messages that fell due since the last one, round-robin over the pairs,
    /// then flush each caller written to once. Deadlines are on a fixed grid from t0, so ticks do not drift,
    /// and the count comes from elapsed time, so a late tick only sends a bigger batch.
    private func tick() {
        guard sending else { return }
        let now = NIODeadline.now()
        sendDue(until: min(now, stopAt))  // a tick that runs after stopAt leaves the rest to stop()
        let step = tickNanoseconds
        let elapsed = (now - t0).nanoseconds
        let next = t0 + .nanoseconds((elapsed / step + 1) * step)
        tickTask = loop.assumeIsolated().scheduleTask(deadline: next) { self.tick() }
    }

    private func sendDue(until now: NIODeadline) {
        guard !pairs.isEmpty else { return }
        let target = Int(Double((now - t0).nanoseconds) * settings.rate / 1e9)
        while due < target {
            let pair = pairs[roundRobin]
            roundRobin += 1
            if roundRobin == pairs.count { roundRobin = 0 }
            sendOne(pair)
            if !pair.needsFlush {
                pair.needsFlush = true
                touched.append(pair.index)
            }
            due += 1
        }
        for index in touched {
            let pair = pairs[index]
            pair.needsFlush = false
            slots[pair.caller].handler?.flush()
        }
        touched.removeAll(keepingCapacity: true)
    }

    private func stop(stopped: EventLoopPromise<Void>, finished: EventLoopPromise<RunCounts>) {
        if settings.rate > 0 { sendDue(until: stopAt) }  // exactly rate × seconds messages
        sending = false
        tickTask?.cancel()
        counts.elapsedSeconds = Double((NIODeadline.now() - t0).nanoseconds) / 1e9
        stopped.succeed()
        // Late arrivals still count for 0.5 s, then the books close.
        loop.assumeIsolated().scheduleTask(in: .milliseconds(500)) {
            self.measuring = false
            if self.histogram.totalCount > 0 {
                self.counts.p50 = self.histogram.valueAtPercentile(50)
                self.counts.p99 = self.histogram.valueAtPercentile(99)
                self.counts.p999 = self.histogram.valueAtPercentile(99.9)
                self.counts.maxLatency = self.histogram.max
            }
            finished.succeed(self.counts)
        }
    }
}
