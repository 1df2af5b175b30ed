import SwitchboardProto
import Testing

@testable import SwitchboardCore

private func message(_ content: String) -> ChatMessage {
    var message = ChatMessage()
    message.content = content
    return message
}

@Suite struct SessionQueuesTests {
    @Test func anIdleSessionsMessagesAreHandledAtOnce() {
        var queues = SessionQueues(capacity: 4, capacityBytes: 1 << 20)
        for index in 0..<10 {
            #expect(queues.admit(message("\(index)"), of: 1) == .handleNow)
        }
        #expect(!queues.isHeld(1), "an idle session costs no entry")
    }

    @Test func aHeldSessionsMessagesWaitInOrderUntilWorkedThrough() {
        var queues = SessionQueues(capacity: 16, capacityBytes: 1 << 20)
        queues.hold(1)
        for content in ["a", "b", "c"] { #expect(queues.admit(message(content), of: 1) == .queued) }
        #expect(queues.admit(message("other"), of: 2) == .handleNow, "sessions are independent")
        #expect(queues.next(of: 1)?.content == "a")
        // While "a" is handled, the session stays held: what it sends now queues behind "b" and "c".
        #expect(queues.admit(message("d"), of: 1) == .queued)
        #expect([queues.next(of: 1), queues.next(of: 1), queues.next(of: 1)].map { $0?.content } == ["b", "c", "d"])
        #expect(queues.next(of: 1) == nil)
        #expect(!queues.isHeld(1), "worked through: idle again")
        #expect(queues.admit(message("e"), of: 1) == .handleNow)
    }

    @Test func whatWaitsIsBoundedInMessages() {
        var queues = SessionQueues(capacity: 3, capacityBytes: 1 << 20)
        queues.hold(1)
        #expect((0..<5).map { queues.admit(message("\($0)"), of: 1) } == [.queued, .queued, .queued, .full, .full])
        _ = queues.next(of: 1)
        #expect(queues.admit(message("again"), of: 1) == .queued, "room again once one is handled")
    }

    @Test func whatWaitsIsBoundedInBytesButOneMessageAlwaysFits() {
        var queues = SessionQueues(capacity: 100, capacityBytes: 10_000)
        let big = String(repeating: "x", count: 6_000)
        #expect(SessionQueues.cost(of: message(big)) == 6_256)
        queues.hold(1)
        #expect(queues.admit(message(big), of: 1) == .queued)
        #expect(queues.admit(message(big), of: 1) == .full, "6,256 + 6,256 bytes > 10,000")
        #expect(queues.admit(message("small"), of: 1) == .queued)

        var empty = SessionQueues(capacity: 100, capacityBytes: 1_000)
        empty.hold(2)
        #expect(empty.admit(message(big), of: 2) == .queued, "one message of any size fits an empty queue")
    }

    @Test func removingASessionForgetsWhatWaited() {
        var queues = SessionQueues(capacity: 8, capacityBytes: 1 << 20)
        queues.hold(1)
        _ = queues.admit(message("a"), of: 1)
        queues.remove(1)
        #expect(!queues.isHeld(1))
        #expect(queues.next(of: 1) == nil)
    }
}
