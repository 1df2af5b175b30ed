import NIOCore
import NIOPosix
import Synchronization
import SwitchboardProto
import Testing

@testable import SwitchboardRedis

private func message(_ content: String) -> ChatMessage {
    var message = ChatMessage()
    message.content = content
    return message
}

/// The `resume`s of messages that are waiting, by content.
private final class Waiting: Sendable {
    private let resumes = Mutex<[String: @Sendable () -> Void]>([:])

    func park(_ content: String, _ resume: @escaping @Sendable () -> Void) {
        resumes.withLock { $0[content] = resume }
    }

    /// Takes the `resume` of `content`'s message (to call it outside the lock).
    func take(_ content: String) -> (@Sendable () -> Void)? {
        resumes.withLock { $0.removeValue(forKey: content) }
    }

    var contents: Set<String> { resumes.withLock { Set($0.keys) } }
}

@Suite struct SessionLaneTests {
    @Test func messagesAreHandledAtOnceAndInOrder() {
        let handled = Collected<String>()
        let lane = SessionLane(capacity: 4, startsBusy: false) { message, _ in
            handled.append(message.content)
            return true
        }
        for index in 0..<10 {
            #expect(lane.submit(message("\(index)")))
            // On the caller's thread, before submit returns.
            #expect(handled.count == index + 1)
        }
        #expect(handled.all == (0..<10).map(String.init))
    }

    @Test func laterMessagesQueueBehindOneThatWaits() async throws {
        let handled = Collected<String>()
        let waiting = Waiting()
        let lane = SessionLane(capacity: 16, startsBusy: false) { message, resume in
            handled.append(message.content)
            guard message.content.hasPrefix("wait") else { return true }
            waiting.park(message.content, resume)
            return false
        }
        #expect(lane.submit(message("a")))
        #expect(lane.submit(message("wait-1")))
        #expect(lane.submit(message("b")))
        #expect(lane.submit(message("wait-2")))
        #expect(lane.submit(message("c")))
        #expect(handled.all == ["a", "wait-1"])
        #expect(waiting.contents == ["wait-1"])

        // The wait ends on an event loop thread; the queue runs there up to the next wait.
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let first = try #require(waiting.take("wait-1"))
        try await eventLoop.submit { first() }.get()
        #expect(handled.all == ["a", "wait-1", "b", "wait-2"])
        #expect(lane.submit(message("d")))
        #expect(handled.all == ["a", "wait-1", "b", "wait-2"])

        let second = try #require(waiting.take("wait-2"))
        try await eventLoop.submit { second() }.get()
        #expect(handled.all == ["a", "wait-1", "b", "wait-2", "c", "d"])

        // Idle again: the next message is handled at once.
        #expect(lane.submit(message("e")))
        #expect(handled.all.last == "e")
    }

    @Test func aLaneThatStartsBusyHoldsEverythingUntilResume() {
        let handled = Collected<String>()
        let lane = SessionLane(capacity: 8, startsBusy: true) { message, _ in
            handled.append(message.content)
            return true
        }
        for index in 0..<5 { #expect(lane.submit(message("\(index)"))) }
        #expect(handled.all.isEmpty)
        lane.resume()
        #expect(handled.all == (0..<5).map(String.init))
        #expect(lane.submit(message("5")))
        #expect(handled.all.count == 6)
    }

    @Test func aFullBacklogRefusesMessages() {
        let handled = Collected<String>()
        let lane = SessionLane(capacity: 3, startsBusy: true) { message, _ in
            handled.append(message.content)
            return true
        }
        #expect((0..<5).map { lane.submit(message("\($0)")) } == [true, true, true, false, false])
        lane.resume()
        #expect(handled.all == ["0", "1", "2"])

        // The message that waits does not count against the capacity; the queue behind it does.
        let waiting = Waiting()
        let busy = SessionLane(capacity: 2, startsBusy: false) { message, resume in
            handled.append(message.content)
            if message.content == "wait" { waiting.park("wait", resume) }
            return message.content != "wait"
        }
        #expect((["wait", "x", "y", "z"]).map { busy.submit(message($0)) } == [true, true, true, false])
        waiting.take("wait")?()
        #expect(handled.all.suffix(3) == ["wait", "x", "y"])
        #expect(busy.submit(message("after")))
        #expect(handled.all.last == "after")
    }

    @Test func theBacklogIsBoundedInBytesButOneMessageAlwaysFits() {
        let handled = Collected<String>()
        let big = String(repeating: "b", count: 6_000)
        let lane = SessionLane(capacity: 100, capacityBytes: 10_000, startsBusy: true) { message, _ in
            handled.append(message.content.count > 100 ? "big" : message.content)
            return true
        }
        // 6,256 bytes wait; another big one would make 12,512 > 10,000; a small one still fits.
        #expect(SessionLane.cost(of: message(big)) == 6_256)
        #expect(lane.submit(message(big)))
        #expect(!lane.submit(message(big)), "a second big message is refused")
        #expect(lane.submit(message("small")))
        lane.resume()
        #expect(handled.all == ["big", "small"])

        // Into an empty backlog, a message bigger than the whole budget is taken (messages are limited
        // in size elsewhere: this bound must not refuse the largest one).
        let busy = SessionLane(capacity: 100, capacityBytes: 1_000, startsBusy: true) { message, _ in
            handled.append(message.content.count > 100 ? "big" : message.content)
            return true
        }
        #expect(busy.submit(message(big)))
        #expect(!busy.submit(message("small")), "the budget is used up")
        busy.resume()
        #expect(busy.submit(message("after")), "the bytes are counted back when the backlog drains")
        #expect(handled.all.suffix(2) == ["big", "after"])
    }

    @Test func aResumeBeforeTheHandlerReturnsKeepsTheOrder() {
        // A future that had already completed runs its callback (and resume) inside the handler.
        let handled = Collected<String>()
        let lane = SessionLane(capacity: 8, startsBusy: true) { message, resume in
            handled.append(message.content)
            guard message.content == "inline" else { return true }
            resume()
            return false
        }
        #expect(lane.submit(message("inline")))
        #expect(lane.submit(message("after")))
        lane.resume()
        #expect(handled.all == ["inline", "after"])
        // The lane is idle, not stuck busy.
        #expect(lane.submit(message("next")))
        #expect(handled.all == ["inline", "after", "next"])
    }

    @Test func concurrentSubmittersKeepTheirOrderAndHandlersNeverOverlap() async throws {
        let handled = Collected<String>()
        let active = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        let group = MultiThreadedEventLoopGroup.singleton
        let lane = SessionLane(capacity: 10_000, startsBusy: false) { message, resume in
            if active.add(1, ordering: .sequentiallyConsistent).newValue != 1 {
                overlaps.add(1, ordering: .sequentiallyConsistent)
            }
            handled.append(message.content)
            let waits = message.content.hasSuffix("0") || message.content.hasSuffix("5")
            active.subtract(1, ordering: .sequentiallyConsistent)
            guard waits else { return true }
            group.next().execute { resume() }
            return false
        }
        let submitters = 4
        let perSubmitter = 200
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for submitter in 0..<submitters {
                tasks.addTask {
                    for index in 0..<perSubmitter {
                        #expect(lane.submit(message("\(submitter)-\(index)")))
                        if index % 16 == 0 { await Task.yield() }
                    }
                }
            }
            try await tasks.waitForAll()
        }
        let all = try await handled.wait(for: submitters * perSubmitter, "handled messages")
        #expect(all.count == submitters * perSubmitter)
        #expect(overlaps.load(ordering: .sequentiallyConsistent) == 0)
        for submitter in 0..<submitters {
            let own = all.filter { $0.hasPrefix("\(submitter)-") }
            #expect(own == (0..<perSubmitter).map { "\(submitter)-\($0)" })
        }
    }
}
