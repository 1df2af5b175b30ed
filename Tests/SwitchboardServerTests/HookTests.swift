import SwitchboardCore
import Testing

@testable import SwitchboardServer

/// The pure parts of the backend hooks (PROTOCOL.md §10): signature, answers, cache, event queue.
@Suite struct HookTests {
    @Test func signatureIsHMACSHA256OfTimestampDotBody() {
        // Python: hmac.new(b"k" * 32, b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
        let signer = HookSigner(secret: String(repeating: "k", count: 32))
        let body = Array(#"{"a":1}"#.utf8)
        #expect(
            signer.signature(timestamp: 1_700_000_000, body: body)
                == "sha256=6935b796c0fec66e5dee52c86c7fd1218a424c32f1adb239ff2893c31e54f033"
        )
        #expect(signer.signature(timestamp: 1_700_000_000, body: body) != signer.signature(timestamp: 1_700_000_001, body: body))
        #expect(HookSigner(secret: "other").signature(timestamp: 1, body: body) != signer.signature(timestamp: 1, body: body))
    }

    @Test func aHookURLWithoutTheSecretStopsStartUpNamingTheKey() throws {
        let base = ["SWITCHBOARD_JWT_SECRET": String(repeating: "j", count: 32)]
        for url in ["SWITCHBOARD_HOOKS_INVITE_URL", "SWITCHBOARD_HOOKS_EVENTS_URL"] {
            #expect {
                try SwitchboardConfiguration.load(
                    file: nil,
                    environment: base.merging([url: "http://127.0.0.1:1/x"]) { $1 },
                    overrides: [:]
                )
            } throws: { ($0 as? ConfigurationError)?.key == "hooks.secret" }
        }
        let configured = try SwitchboardConfiguration.load(
            file: nil,
            environment: base.merging([
                "SWITCHBOARD_HOOKS_INVITE_URL": "https://backend.example/permission",
                "SWITCHBOARD_HOOKS_SECRET": String(repeating: "s", count: 32),
                "SWITCHBOARD_HOOKS_INVITE_ON_ERROR": "allow",
            ]) { $1 },
            overrides: [:]
        )
        #expect(configured.hooks.inviteOnErrorAllows)
        #expect(configured.hooks.inviteTimeout == .seconds(2))
        #expect(configured.hooks.eventsRetry == .seconds(60))
        #expect(throws: ConfigurationError.self) {
            try SwitchboardConfiguration.load(
                file: nil,
                environment: base.merging(["SWITCHBOARD_HOOKS_INVITE_ON_ERROR": "maybe"]) { $1 },
                overrides: [:]
            )
        }
    }

    @Test func verdicts() {
        func verdict(_ status: Int, _ body: String?) -> InvitePermissionHook.Verdict {
            InvitePermissionHook.verdict(status: status, body: body.map { Array($0.utf8) })
        }
        #expect(verdict(200, #"{"allow":true}"#) == .allow)
        #expect(verdict(204, #"{"allow":false,"why":"blocked"}"#) == .deny)
        #expect(verdict(403, nil) == .deny)
        #expect(verdict(403, #"{"allow":true}"#) == .deny)
        for (status, body) in [
            (200, "{}"), (200, #"{"allow":"yes"}"#), (200, "not json"), (200, nil), (500, #"{"allow":true}"#), (401, nil),
            (302, nil),
        ] {
            guard case .error = verdict(status, body) else {
                Issue.record("status \(status) body \(body ?? "nil") is not an error")
                continue
            }
        }
    }

    @Test func cacheKeepsAnswersForTheirTTLPerPair() {
        var cache = PermissionCache(ttl: 1000)
        cache.store(true, caller: "a", callee: "b", now: 0)
        cache.store(false, caller: "a", callee: "c", now: 0)
        #expect(cache.answer(caller: "a", callee: "b", now: 999) == true)
        #expect(cache.answer(caller: "a", callee: "c", now: 999) == false)
        #expect(cache.answer(caller: "b", callee: "a", now: 0) == nil)  // a pair has a direction
        #expect(cache.answer(caller: "a", callee: "b", now: 1000) == nil)
        cache.store(false, caller: "a", callee: "b", now: 1500)  // expired ones go as new ones come
        #expect(cache.count == 1)
        #expect(cache.answer(caller: "a", callee: "b", now: 1600) == false)
    }

    @Test func cacheIsBoundedTheOldestGivingWay() {
        var cache = PermissionCache(ttl: 1_000_000, capacity: 100)
        for index in 0..<1000 { cache.store(true, caller: "a", callee: "u\(index)", now: Int64(index)) }
        #expect(cache.count == 100)
        #expect(cache.answer(caller: "a", callee: "u899", now: 1000) == nil)
        #expect(cache.answer(caller: "a", callee: "u900", now: 1000) == true)
        // Storing the same pair again and again neither grows it nor evicts others.
        for index in 0..<1000 { cache.store(index % 2 == 0, caller: "a", callee: "u999", now: Int64(1000 + index)) }
        #expect(cache.count == 100)
        #expect(cache.answer(caller: "a", callee: "u900", now: 3000) == true)
        #expect(cache.answer(caller: "a", callee: "u999", now: 3000) == false)
    }

    @Test func backoffDoublesFromOneSecondUpToThirty() {
        #expect((1...8).map(EventQueue.backoff(afterFailures:)) == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
    }

    @Test func queueKeepsEachCallsOrderAndLetsOtherCallsPass() {
        var queue = EventQueue(maxCount: 10, maxBytes: 1000, retryWindow: 60_000)
        for (call, event) in [("a", "a1"), ("b", "b1"), ("a", "a2")] {
            let queued = queue.enqueue(callId: call, body: Array(event.utf8))
            #expect(queued)
        }
        #expect(queue.next()?.body == Array("a1".utf8))
        #expect(queue.next()?.body == Array("b1".utf8))
        #expect(queue.next() == nil)  // a2 waits for a1
        #expect(queue.failed(callId: "a", now: 0) == .retry(afterMilliseconds: 1000))
        #expect(queue.next() == nil)  // a1 waits for its retry, a2 behind it
        queue.delivered(callId: "b")
        queue.retryDue(callId: "a")
        let retried = queue.next()
        #expect(retried?.body == Array("a1".utf8) && retried?.failures == 1)
        queue.delivered(callId: "a")
        #expect(queue.next()?.body == Array("a2".utf8))
        queue.delivered(callId: "a")
        #expect(queue.count == 0 && queue.bytes == 0)
    }

    @Test func queueGivesUpAfterTheRetryWindow() {
        var queue = EventQueue(maxCount: 10, maxBytes: 1000, retryWindow: 5000)
        _ = queue.enqueue(callId: "a", body: [1])
        _ = queue.enqueue(callId: "a", body: [2])
        var outcomes: [EventQueue.AfterFailure] = []
        var now: Int64 = 0
        while true {
            _ = queue.next()
            let outcome = queue.failed(callId: "a", now: now)
            outcomes.append(outcome)
            guard case .retry(let delay) = outcome else { break }
            now += delay
            queue.retryDue(callId: "a")
        }
        // Tried at 0, 1 and 3 s; a try at 7 s would be past the 5 s window.
        #expect(outcomes == [.retry(afterMilliseconds: 1000), .retry(afterMilliseconds: 2000), .givenUp])
        #expect(queue.count == 1)
        #expect(queue.next()?.body == [2])  // the call's next event goes on
    }

    @Test func queueIsBoundedInEventsAndBytes() {
        var queue = EventQueue(maxCount: 3, maxBytes: 10, retryWindow: 1000)
        let four = [UInt8](repeating: 0, count: 4)
        let taken = [
            queue.enqueue(callId: "a", body: four),
            queue.enqueue(callId: "b", body: four),
            queue.enqueue(callId: "c", body: four),  // 12 bytes > 10
            queue.enqueue(callId: "c", body: [1, 2]),
            queue.enqueue(callId: "d", body: []),  // 3 events already
        ]
        #expect(taken == [true, true, false, true, false])
        #expect(queue.count == 3 && queue.bytes == 10)
        _ = queue.next()
        queue.delivered(callId: "a")
        let roomAgain = queue.enqueue(callId: "d", body: four)
        #expect(roomAgain)
    }
}
