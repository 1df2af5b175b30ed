import NIOCore
import NIOPosix
import NIOWebSocket
import SwitchboardAuth

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `upgrades` scenario on one event loop (every method runs there): `concurrency` workers, each
/// connecting with a fresh token for a user of its own, closing the WebSocket once the 101 is in and starting
/// again, until the window ends.
final class UpgradeRun {
    /// What the run saw: every connection that was started has finished.
    struct Counts: Sendable {
        var completed = 0
        var failed = 0
        /// Failed upgrades by what they were (`HTTP 429`, `connect: …`).
        var failures: [String: Int] = [:]
        var p50: UInt64?
        var p99: UInt64?
        var elapsedSeconds = 0.0
    }

    private let loop: any EventLoop
    private let url: WebSocketURL
    private let signer: JWTSigner
    private let tag: String
    private let concurrency: Int
    private var users = 0
    private var workers = 0
    private var stopping = false
    private var counts = Counts()
    private var latencies = LatencyHistogram()
    private var startedAt = NIODeadline.now()
    private var done: EventLoopPromise<Counts>?

    /// A close frame with status 1000: the server answers it and closes TCP first, so the TIME_WAIT sockets
    /// are the server's and this side's ephemeral ports are not used up.
    private static let closeFrame: WebSocketFrame = {
        var data = ByteBuffer()
        data.writeInteger(UInt16(1000))
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: WebSocketClient.maskKey, data: data)
    }()

    init(loop: any EventLoop, url: WebSocketURL, secret: String, tag: String, concurrency: Int) {
        self.loop = loop
        self.url = url
        self.signer = JWTSigner(secret: secret)
        self.tag = tag
        self.concurrency = concurrency
    }

    /// Runs the workers for `seconds`; the future completes once the last connection has closed.
    func run(seconds: Double) -> EventLoopFuture<Counts> {
        let promise = loop.makePromise(of: Counts.self)
        done = promise
        startedAt = .now()
        workers = concurrency
        for _ in 0..<concurrency { launch() }
        loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { self.stopping = true }
        return promise.futureResult
    }

    /// One cycle: TCP connect, the upgrade request with a token signed now, the 101, the close handshake.
    private func launch() {
        let user = "\(tag)u\(users)"
        users += 1
        let token = signer.token(user: user, name: nil, avatar: nil, expiresAt: Int64(time(nil)) + 3600)
        let start = LatencyHistogram.nowMicroseconds
        WebSocketClient.connect(on: loop, url: url, token: token) { _ in }
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.latencies.record(from: start, to: LatencyHistogram.nowMicroseconds)
                    channel.writeAndFlush(Self.closeFrame, promise: nil)
                    let forced = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        forced.cancel()
                        self.counts.completed += 1
                        self.next()
                    }
                case .failure(let error):
                    self.counts.failed += 1
                    self.counts.failures[Self.describe(error), default: 0] += 1
                    self.next(after: .milliseconds(10))  // a refusing server is not asked in a busy loop
                }
            }
    }

    /// A worker's cycle ended: it starts the next one (after `pause`) or, once the window is over, stops.
    private func next(after pause: TimeAmount? = nil) {
        guard stopping else {
            if let pause {
                loop.assumeIsolated().scheduleTask(in: pause) { self.next() }
            } else {
                launch()
            }
            return
        }
        workers -= 1
        guard workers == 0, let done else { return }
        counts.elapsedSeconds = Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9
        counts.p50 = latencies.percentile(50)
        counts.p99 = latencies.percentile(99)
        self.done = nil
        done.succeed(counts)
    }

    private static func describe(_ error: any Error) -> String {
        if case BenchError.refused(_, let status) = error { return "HTTP \(status.code)" }
        return String(String(describing: error).prefix(80))
    }
}
