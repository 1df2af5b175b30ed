import NIOCore
import NIOEmbedded
import Synchronization

@testable import RedisWire  // RESPArgument's bytes, to read what the outbox sends
@testable import SwitchboardRedis

/// An encoded envelope (what the outbox carries) whose message is `text`.
func parcel(_ text: String) -> ByteBuffer {
    Envelope(kind: .deliver, origin: "n1", user: "bob", message: ByteBuffer(string: text)).encoded()
}

/// The text of a ``parcel(_:)``; other bytes as they are.
func parcelText(_ bytes: ByteBuffer) -> String {
    (try? Envelope(decoding: bytes)).map { String(buffer: $0.message) } ?? String(buffer: bytes)
}

/// Redis for an outbox on an `EmbeddedEventLoop`: `ZSCORE` answers a live heartbeat; `PUBLISH` answers
/// `receivers` at once or, while that is `nil`, when the test calls ``answerPending(receivers:)``.
final class EmbeddedRedis: RedisCommandSender {
    /// One envelope published: its message text and number.
    struct Published: Sendable, Equatable {
        var text: String
        var sequence: UInt64
    }

    private struct State {
        var receivers: Int64?
        var published: [Published] = []
        var publishCommands = 0
        var pending: [EventLoopPromise<RESPValue>] = []
    }

    let eventLoop: EmbeddedEventLoop
    private let state: Mutex<State>

    init(_ eventLoop: EmbeddedEventLoop, receivers: Int64?) {
        self.eventLoop = eventLoop
        self.state = Mutex(State(receivers: receivers))
    }

    var receivers: Int64? {
        get { state.withLock { $0.receivers } }
        set { state.withLock { $0.receivers = newValue } }
    }

    /// Every envelope published so far, in order.
    var published: [Published] { state.withLock { $0.published } }
    var publishedTexts: [String] { published.map(\.text) }
    /// How many `PUBLISH` commands carried them (one per bundle).
    var publishCommands: Int { state.withLock { $0.publishCommands } }

    func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard case .string(let name) = command.first?.storage, name == "PUBLISH",
            case .buffer(let payload) = command.last?.storage
        else {
            return eventLoop.makeSucceededFuture(.bulkString(ByteBuffer(string: "1700000000000")))
        }
        let envelopes = (EnvelopeBundle.split(payload) ?? []).compactMap { try? Envelope(decoding: $0) }
        let promise = state.withLock { state -> EventLoopPromise<RESPValue>? in
            state.published += envelopes.map { Published(text: String(buffer: $0.message), sequence: $0.sequence) }
            state.publishCommands += 1
            guard state.receivers == nil else { return nil }
            let promise = eventLoop.makePromise(of: RESPValue.self)
            state.pending.append(promise)
            return promise
        }
        return promise?.futureResult ?? eventLoop.makeSucceededFuture(.integer(receivers ?? 0))
    }

    func send(batch commands: [[RESPArgument]]) -> [EventLoopFuture<RESPValue>] {
        commands.map(send)
    }

    /// Answers every `PUBLISH` waiting so far with `receivers`.
    func answerPending(receivers: Int64) {
        let pending = state.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
        for promise in pending { promise.succeed(.integer(receivers)) }
        eventLoop.run()
    }
}
