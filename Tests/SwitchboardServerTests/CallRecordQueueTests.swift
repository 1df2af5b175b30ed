import SwitchboardCore
import Testing

@testable import SwitchboardServer

/// The record writer's bounded queue: a bound in calls, merges that never count as new.
@Suite struct CallRecordQueueTests {
    func record(_ callId: String, _ status: CallStatus, caller: String = "alice", at time: Int64 = 1_000) -> CallRecord {
        CallRecord(
            callId: callId,
            callerId: caller,
            calleeId: "bob",
            callType: .audio,
            status: status,
            createdAt: time,
            updatedAt: time
        )
    }

    @Test func refusesNewCallsBeyondCapacity() {
        var queue = CallRecordQueue(capacity: 3)
        for index in 0..<3 { #expect(queue.enqueue(record("c\(index)", .invite)) == .queued) }
        #expect(queue.enqueue(record("c3", .invite)) == .refused)
        #expect(queue.enqueue(record("c4", .failed)) == .refused)
        #expect(queue.count == 3)
        #expect(!queue.contains(callId: "c3"))
        // Taking one makes room for exactly one new call.
        #expect(queue.next()?.callId == "c0")
        #expect(queue.enqueue(record("c3", .invite)) == .queued)
        #expect(queue.enqueue(record("c5", .invite)) == .refused)
        #expect(queue.count == 3)
    }

    @Test func updatesOfAQueuedCallMergeAndAreNeverRefused() {
        var queue = CallRecordQueue(capacity: 2)
        #expect(queue.enqueue(record("a", .invite, at: 1)) == .queued)
        #expect(queue.enqueue(record("b", .invite, at: 2)) == .queued)
        var accepted = record("a", .accepted, at: 5)
        accepted.startTime = 5
        #expect(queue.enqueue(accepted) == .merged)  // full, but an update of a waiting call
        var ended = record("a", .hungUp, at: 9)
        ended.startTime = 5
        ended.endTime = 9
        ended.duration = 4
        ended.endReason = "hangup"
        #expect(queue.enqueue(ended) == .merged)
        #expect(queue.count == 2)
        // One entry for "a": its latest snapshot with the first snapshot's createdAt, as the upsert keeps it.
        let first = queue.next()
        #expect(first?.callId == "a")
        #expect(first?.status == .hungUp && first?.endTime == 9 && first?.duration == 4 && first?.endReason == "hangup")
        #expect(first?.createdAt == 1 && first?.updatedAt == 9)
        #expect(queue.next()?.callId == "b")
        #expect(queue.next() == nil)
    }

    @Test func aMergeNeverTakesTheCallBack() {
        var queue = CallRecordQueue(capacity: 4)
        #expect(queue.enqueue(record("a", .rejected, at: 3)) == .queued)
        #expect(queue.enqueue(record("a", .accepted, at: 4)) == .merged)  // later, but behind an ended call
        #expect(queue.enqueue(record("a", .invite, at: 5)) == .merged)
        #expect(queue.next()?.status == .rejected)
        #expect(queue.count == 0)
    }

    @Test func aCallBeingSavedStaysTakenAndItsUpdatesAreNotRefused() {
        var queue = CallRecordQueue(capacity: 1)
        #expect(queue.enqueue(record("a", .invite)) == .queued)
        #expect(queue.next()?.callId == "a")  // being saved
        #expect(queue.contains(callId: "a"))
        #expect(queue.enqueue(record("b", .invite)) == .queued)
        // Full, and "a" has no waiting entry to merge into, but it is a call the writer holds.
        #expect(queue.enqueue(record("a", .hungUp)) == .queued)
        #expect(queue.enqueue(record("c", .invite)) == .refused)
        #expect(queue.count == 2)
        queue.saved(callId: "a")
        #expect(queue.contains(callId: "a"), "its second snapshot still waits")
        #expect(queue.next()?.callId == "b")
        queue.saved(callId: "b")
        #expect(!queue.contains(callId: "b"))
        #expect(queue.next()?.status == .hungUp)
        queue.saved(callId: "a")
        #expect(!queue.contains(callId: "a"))
        #expect(queue.next() == nil)
    }

    @Test func otherPartiesUnderOneCallIdAreKeptApart() {
        var queue = CallRecordQueue(capacity: 4)
        #expect(queue.enqueue(record("a", .invite, caller: "alice")) == .queued)
        #expect(queue.enqueue(record("a", .hungUp, caller: "mallory")) == .queued)
        #expect(queue.count == 2)
        #expect(queue.next()?.callerId == "alice")
        #expect(queue.next()?.callerId == "mallory")
    }

    @Test func holdsAtMostCapacityCallsUnderAFlood() {
        var queue = CallRecordQueue(capacity: 1_000)
        var refused = 0
        for index in 0..<10_000 {
            let id = "call-\(index)"
            if queue.enqueue(record(id, .invite)) == .refused {
                refused += 1
                continue
            }
            #expect(queue.enqueue(record(id, .accepted)) == .merged)
            #expect(queue.enqueue(record(id, .hungUp)) == .merged)
        }
        print(
            "CallRecordQueue flood: 10,000 calls × 3 snapshots into 1,000 entries: \(queue.count) held, \(refused) calls refused"
        )
        #expect(queue.count == 1_000)
        #expect(refused == 9_000)
    }
}
