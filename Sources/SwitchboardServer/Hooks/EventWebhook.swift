import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// Posts every call event this node logs to `hooks.events_url` (PROTOCOL.md §10): the log line's JSON,
/// signed, at least once, in order per call (``EventQueue``), a few at a time. A failed delivery (no
/// 2xx within ``requestTimeout``) is retried with backoff for `hooks.events_retry`, then given up:
/// logged and counted, as is an event with no room in the queue. Events are posted by the node that
/// logs them, so each is posted by exactly one node.
final class EventWebhook: Sendable {
    /// Deliveries open at once.
    static let maxInFlight = 8
    /// How long one delivery may take.
    static let requestTimeout: TimeAmount = .seconds(5)
    /// How long queued events may still go at shutdown.
    static let drainTime: Duration = .seconds(2)

    private struct State {
        var queue: EventQueue
        var inFlight = 0
        var stopped = false
    }

    private let state: Mutex<State>
    private let client: HookClient
    private let url: String
    private let eventLoop: any EventLoop
    private let clock: SwitchboardClock
    private let metrics: HookMetrics
    private let logger: Logger

    init(
        client: HookClient,
        url: String,
        configuration: SwitchboardConfiguration.Hooks,
        eventLoop: any EventLoop,
        metrics: HookMetrics,
        clock: SwitchboardClock = .system,
        logger: Logger
    ) {
        state = Mutex(
            State(
                queue: EventQueue(
                    maxCount: configuration.eventsMaxQueued,
                    maxBytes: configuration.eventsMaxQueuedBytes,
                    retryWindow: configuration.eventsRetry.wholeMilliseconds
                )
            )
        )
        self.client = client
        self.url = url
        self.eventLoop = eventLoop
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues the log line `body` of an event of `callId` for posting; never blocks.
    func post(_ body: String, callId: String) {
        let queued = state.withLock { $0.stopped ? false : $0.queue.enqueue(callId: callId, body: Array(body.utf8)) }
        guard queued else { return givenUp(callId: callId, body: body, why: "no room in the queue (or shut down)") }
        pump()
    }

    /// At shutdown: gives what is queued ``drainTime`` to go, then gives up the rest (logged, counted).
    func drain() async {
        let deadline = ContinuousClock.now + Self.drainTime
        while state.withLock({ $0.queue.count > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = state.withLock { state -> Int in
            state.stopped = true
            return state.queue.count
        }
        if left > 0 {
            metrics.eventsGivenUp.increment(by: left)
            logger.error("call events given up at shutdown", metadata: ["events": "\(left)"])
        }
    }

    /// Starts deliveries while fewer than ``maxInFlight`` are open and events are ready.
    private func pump() {
        while let event = state.withLock({ state -> EventQueue.Event? in
            guard !state.stopped, state.inFlight < Self.maxInFlight, let event = state.queue.next() else { return nil }
            state.inFlight += 1
            return event
        }) {
            send(event)
        }
    }

    private func send(_ event: EventQueue.Event) {
        if event.failures > 0 { metrics.eventsRetried.increment() }
        client.post(url, body: event.body, deadline: .now() + Self.requestTimeout).whenComplete { [self] result in
            let succeeded = if case .success(let answer) = result { (200..<300).contains(answer.status) } else { false }
            let now = Int64(clock.monotonicNanoseconds() / 1_000_000)
            let after = state.withLock { state -> EventQueue.AfterFailure? in
                state.inFlight -= 1
                if succeeded {
                    state.queue.delivered(callId: event.callId)
                    return nil
                }
                return state.queue.failed(callId: event.callId, now: now)
            }
            switch after {
            case nil:
                metrics.eventsSent.increment()
            case .retry(let delay)?:
                eventLoop.scheduleTask(in: .milliseconds(delay)) { [self] in
                    state.withLock { $0.queue.retryDue(callId: event.callId) }
                    pump()
                }
            case .givenUp?:
                let why = if case .success(let answer) = result { "status \(answer.status)" } else { "no answer" }
                givenUp(callId: event.callId, body: String(decoding: event.body, as: UTF8.self), why: why)
            }
            pump()
        }
    }

    private func givenUp(callId: String, body: String, why: String) {
        metrics.eventsGivenUp.increment()
        logger.error("call event given up", metadata: ["call_id": "\(callId)", "reason": "\(why)", "event": "\(body)"])
    }
}
