import SwitchboardCore
import Synchronization
import Testing

/// What a deployment looks like to a store under test: two nodes' views of one set of calls (the same
/// store twice for the in-process one; two Redis stores of different nodes on one redis-server), and
/// presence the test can set.
package protocol CallStoreFixture: Sendable {
    /// The store as node `n1` uses it.
    var n1: any CallStore { get }
    /// The store as node `n2` uses it (the same calls).
    var n2: any CallStore { get }
    /// Puts `user`'s session on `node`.
    func connect(_ user: String, on node: String) async throws
    /// Takes `user`'s session (on `node`) away: the user is online nowhere.
    func disconnect(_ user: String, from node: String) async throws
}

/// Behaviour every ``CallStore`` must show (PROTOCOL.md §3), written once and run against each
/// implementation: the in-process store (SwitchboardCoreTests) and the Redis store on a real
/// redis-server (SwitchboardRedisTests). Each check makes its own user and call ids, so checks may share
/// one store.
package enum CallStoreConformance {
    /// One check of the contract.
    package enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case inviteRingsAndNamesTheCalleesNode
        case inviteToAnOfflineCalleeFails
        case inviteToYourselfIsForbidden
        case inviteMeetingABusyPartyFails
        case inviteWithALiveCallsIdIsDuplicateOrSaysItIsLive
        case acceptMakesTheCallActive
        case acceptStartsNoEarlierThanTheInvite
        case onlyTheCalleeAcceptsOrRejectsARingingCall
        case rejectEndsARingingCallOnly
        case eitherPartyHangsUp
        case signalWithoutCallIdFindsTheSendersCall
        case signalForAnotherPairsCallIsNoCall
        case lookupChangesNothing
        case peerNodeIsNilWhenThePeerIsOffline
        case expireEndsOnlyARingingCall
        case abandonEndsTheCallOfAUserOnlineNowhere
        case restoreWritesBackOnlyWhatIsFree
        case racingAcceptsHaveOneWinner
        case racingInvitesToOneCalleeRingOnce
        case acceptRacingHangupEndsInOneOrder
        case inviteMeetingTheCalleesRingingInviteIsGlare
        case racingCrossInvitesMakeOneCall
        case callConnectedSetsConnectedAtOnceInAnActiveCall
        case restoreKeepsConnectedAt

        package var testDescription: String { rawValue }
    }

    /// Runs `check` against the stores of `fixture`.
    package static func run(_ check: Check, on fixture: some CallStoreFixture) async throws {
        let t = Context(fixture: fixture)
        switch check {
        case .inviteRingsAndNamesTheCalleesNode: try await inviteRings(t)
        case .inviteToAnOfflineCalleeFails: try await inviteOffline(t)
        case .inviteToYourselfIsForbidden: try await inviteSelf(t)
        case .inviteMeetingABusyPartyFails: try await inviteBusy(t)
        case .inviteWithALiveCallsIdIsDuplicateOrSaysItIsLive: try await inviteLiveId(t)
        case .acceptMakesTheCallActive: try await accept(t)
        case .acceptStartsNoEarlierThanTheInvite: try await acceptEarlyClock(t)
        case .onlyTheCalleeAcceptsOrRejectsARingingCall: try await onlyCallee(t)
        case .rejectEndsARingingCallOnly: try await reject(t)
        case .eitherPartyHangsUp: try await hangup(t)
        case .signalWithoutCallIdFindsTheSendersCall: try await withoutCallId(t)
        case .signalForAnotherPairsCallIsNoCall: try await anotherPair(t)
        case .lookupChangesNothing: try await lookup(t)
        case .peerNodeIsNilWhenThePeerIsOffline: try await peerOffline(t)
        case .expireEndsOnlyARingingCall: try await expire(t)
        case .abandonEndsTheCallOfAUserOnlineNowhere: try await abandon(t)
        case .restoreWritesBackOnlyWhatIsFree: try await restore(t)
        case .racingAcceptsHaveOneWinner: try await racingAccepts(t)
        case .racingInvitesToOneCalleeRingOnce: try await racingInvites(t)
        case .acceptRacingHangupEndsInOneOrder: try await acceptAgainstHangup(t)
        case .inviteMeetingTheCalleesRingingInviteIsGlare: try await glare(t)
        case .racingCrossInvitesMakeOneCall: try await racingCrossInvites(t)
        case .callConnectedSetsConnectedAtOnceInAnActiveCall: try await callConnected(t)
        case .restoreKeepsConnectedAt: try await restoreConnected(t)
        }
    }
}

// MARK: - Checks

/// A realistic unix-ms time.
private let t0: Int64 = 1_700_000_000_000

extension CallStoreConformance {
    private static func inviteRings(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = t.call("c1", alice, bob, .video)
        let outcome = try await t.invite(call, on: t.fixture.n1)
        #expect(outcome == .ringing(call, calleeNode: "n2"))
        #expect(call.state == .ringing && call.startedAt == nil)
        // Both nodes see it.
        #expect(
            try await t.apply(.lookup, from: bob, to: alice, callId: call.id, on: t.fixture.n2) == .found(call, peerNode: "n1")
        )
    }

    private static func inviteOffline(_ t: Context) async throws {
        let alice = try await t.online("alice", on: "n1")
        let ghost = t.user("ghost")
        #expect(try await t.invite(t.call("c1", alice, ghost), on: t.fixture.n1) == .offline(idIsLive: false))
        // Nothing was kept: the caller is free.
        let bob = try await t.online("bob", on: "n2")
        #expect(try await t.invite(t.call("c2", alice, bob), on: t.fixture.n1).isRinging)
    }

    private static func inviteSelf(_ t: Context) async throws {
        let alice = try await t.online("alice", on: "n1")
        #expect(try await t.invite(t.call("c1", alice, alice), on: t.fixture.n1) == .forbidden)
    }

    private static func inviteBusy(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let carol = try await t.online("carol", on: "n1")
        try await t.ring("c1", alice, bob)
        // (bob → alice is glare: see `glare`.)
        for (caller, callee) in [(alice, carol), (bob, carol), (carol, alice), (carol, bob)] {
            let outcome = try await t.invite(t.call("c2", caller, callee), on: t.fixture.n2)
            #expect(outcome == .busy(idIsLive: false), "\(caller) → \(callee)")
        }
        // The call rings on, untouched.
        #expect(try await t.apply(.lookup, from: alice, to: bob, callId: t.id("c1"), on: t.fixture.n1).call?.state == .ringing)
    }

    private static func inviteLiveId(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let (carol, dave) = try await t.online("carol", on: "n1", "dave", on: "n2")
        let erin = try await t.online("erin", on: "n1")
        try await t.ring("c1", alice, bob)
        // Re-sending your own invite, or a stranger using the live id: duplicate.
        #expect(try await t.invite(t.call("c1", alice, bob), on: t.fixture.n1) == .duplicate)
        #expect(try await t.invite(t.call("c1", carol, dave), on: t.fixture.n1) == .duplicate)
        // Refused for another reason: the answer says the id is live (its record must not be touched).
        #expect(try await t.invite(t.call("c1", carol, t.user("ghost")), on: t.fixture.n2) == .offline(idIsLive: true))
        try await t.ring("c2", carol, dave)
        #expect(try await t.invite(t.call("c1", erin, carol), on: t.fixture.n2) == .busy(idIsLive: true))
    }

    private static func accept(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.ring("c1", alice, bob)
        let outcome = try await t.apply(.accept, from: bob, to: alice, callId: call.id, now: t0 + 5_000, on: t.fixture.n2)
        let active = Call(
            id: call.id,
            caller: alice,
            callee: bob,
            callType: call.callType,
            createdAt: t0,
            state: .active,
            startedAt: t0 + 5_000
        )
        #expect(outcome == .accepted(active, peerNode: "n1"))
        #expect(try await t.apply(.lookup, from: alice, to: bob, callId: nil, on: t.fixture.n1) == .found(active, peerNode: "n2"))
        // Accepting again: no ringing call.
        #expect(
            try await t.apply(.accept, from: bob, to: alice, callId: call.id, on: t.fixture.n1)
                == .noCall(message: "no ringing call for you to accept")
        )
    }

    private static func acceptEarlyClock(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.ring("c1", alice, bob)
        // The accepting node's clock is a little behind the inviting node's.
        let outcome = try await t.apply(.accept, from: bob, to: alice, callId: call.id, now: t0 - 50, on: t.fixture.n2)
        #expect(outcome.call?.startedAt == t0)
    }

    private static func onlyCallee(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.ring("c1", alice, bob)
        #expect(
            try await t.apply(.accept, from: alice, to: bob, callId: call.id, on: t.fixture.n1)
                == .noCall(message: "no ringing call for you to accept")
        )
        #expect(
            try await t.apply(.reject, from: alice, to: bob, callId: call.id, on: t.fixture.n1)
                == .noCall(message: "no ringing call for you to reject")
        )
        #expect(try await t.apply(.lookup, from: alice, to: bob, callId: call.id, on: t.fixture.n1).call?.state == .ringing)
    }

    private static func reject(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.ring("c1", alice, bob)
        #expect(
            try await t.apply(.reject, from: bob, to: alice, callId: call.id, on: t.fixture.n2)
                == .ended(call, status: .rejected, peerNode: "n1")
        )
        #expect(try await t.apply(.lookup, from: alice, to: bob, callId: call.id, on: t.fixture.n1).isNoCall)
        // An active call cannot be rejected.
        let active = try await t.establish("c2", alice, bob)
        #expect(
            try await t.apply(.reject, from: bob, to: alice, callId: active.id, on: t.fixture.n2)
                == .noCall(message: "no ringing call for you to reject")
        )
    }

    private static func hangup(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        // The caller while ringing, the callee while active; both parties are free after.
        let ringing = try await t.ring("c1", alice, bob)
        #expect(
            try await t.apply(.hangup, from: alice, to: bob, callId: ringing.id, on: t.fixture.n1)
                == .ended(ringing, status: .hungUp, peerNode: "n2")
        )
        let active = try await t.establish("c2", alice, bob)
        #expect(
            try await t.apply(.hangup, from: bob, to: alice, callId: nil, on: t.fixture.n2)
                == .ended(active, status: .hungUp, peerNode: "n1")
        )
        #expect(try await t.apply(.hangup, from: bob, to: alice, callId: nil, on: t.fixture.n2).isNoCall)
        #expect(try await t.invite(t.call("c3", bob, alice), on: t.fixture.n2).isRinging)
    }

    private static func withoutCallId(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let carol = try await t.online("carol", on: "n1")
        let call = try await t.ring("c1", alice, bob)
        #expect(try await t.apply(.lookup, from: bob, to: alice, callId: nil, on: t.fixture.n2) == .found(call, peerNode: "n1"))
        // The sender's call is with someone else.
        #expect(
            try await t.apply(.lookup, from: bob, to: carol, callId: nil, on: t.fixture.n2)
                == .noCall(message: "no call with \(carol)")
        )
        #expect(
            try await t.apply(.hangup, from: carol, to: alice, callId: nil, on: t.fixture.n1)
                == .noCall(message: "no call with \(alice)")
        )
    }

    private static func anotherPair(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let (carol, dave) = try await t.online("carol", on: "n1", "dave", on: "n2")
        let call = try await t.establish("c1", alice, bob)
        try await t.ring("c2", carol, dave)
        for (sender, recipient) in [(carol, alice), (carol, dave), (alice, alice), (alice, carol)] {
            for operation in CallOperation.allCases {
                let outcome = try await t.apply(operation, from: sender, to: recipient, callId: call.id, on: t.fixture.n1)
                #expect(outcome == .noCall(message: "no such call for you"), "\(operation) \(sender) → \(recipient)")
            }
        }
        #expect(
            try await t.apply(.lookup, from: alice, to: bob, callId: call.id, on: t.fixture.n1) == .found(call, peerNode: "n2")
        )
    }

    private static func lookup(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.ring("c1", alice, bob)
        for _ in 0..<3 {
            #expect(
                try await t.apply(.lookup, from: alice, to: bob, callId: call.id, on: t.fixture.n1)
                    == .found(call, peerNode: "n2")
            )
        }
        #expect(try await t.apply(.accept, from: bob, to: alice, callId: call.id, on: t.fixture.n2).isAccepted)
    }

    private static func peerOffline(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.establish("c1", alice, bob)
        try await t.fixture.disconnect(bob, from: "n2")
        #expect(
            try await t.apply(.lookup, from: alice, to: bob, callId: call.id, on: t.fixture.n1) == .found(call, peerNode: nil)
        )
        #expect(
            try await t.apply(.hangup, from: alice, to: bob, callId: call.id, on: t.fixture.n1)
                == .ended(call, status: .hungUp, peerNode: nil)
        )
    }

    private static func expire(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let ringing = try await t.ring("c1", alice, bob)
        #expect(try await t.ask { t.fixture.n2.expire(callId: ringing.id, now: t0 + 60_000, then: $0) } == ringing)
        #expect(try await t.ask { t.fixture.n1.expire(callId: ringing.id, now: t0 + 60_000, then: $0) } == nil, "once")
        #expect(try await t.apply(.lookup, from: alice, to: bob, callId: ringing.id, on: t.fixture.n1).isNoCall)
        let active = try await t.establish("c2", alice, bob)
        #expect(try await t.ask { t.fixture.n1.expire(callId: active.id, now: t0 + 60_000, then: $0) } == nil)
        #expect(try await t.ask { t.fixture.n1.expire(callId: t.id("unknown"), now: t0, then: $0) } == nil)
        #expect(try await t.apply(.lookup, from: alice, to: bob, callId: active.id, on: t.fixture.n1).isFound)
    }

    private static func abandon(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.establish("c1", alice, bob)
        // Still online (back on another node, say): nothing ends.
        #expect(try await t.ask { t.fixture.n1.abandon(alice, now: t0 + 9_000, then: $0) } == nil)
        try await t.fixture.disconnect(alice, from: "n1")
        #expect(
            try await t.ask { t.fixture.n1.abandon(alice, now: t0 + 10_000, then: $0) } == PartedCall(call: call, peerNode: "n2")
        )
        #expect(try await t.ask { t.fixture.n2.abandon(alice, now: t0 + 10_000, then: $0) } == nil, "once")
        #expect(try await t.apply(.lookup, from: bob, to: alice, callId: call.id, on: t.fixture.n2).isNoCall)
        // A user in no call: nothing.
        #expect(try await t.ask { t.fixture.n1.abandon(t.user("nobody"), now: t0, then: $0) } == nil)
    }

    private static func callConnected(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let carol = try await t.online("carol", on: "n1")
        let ringing = try await t.ring("c1", alice, bob)
        #expect(
            try await t.apply(.connect, from: alice, to: bob, callId: ringing.id, on: t.fixture.n1)
                == .noCall(message: "no active call of yours"),
            "ringing is not connected"
        )
        #expect(try await t.apply(.hangup, from: alice, to: bob, callId: ringing.id, on: t.fixture.n1).isEnded)
        let active = try await t.establish("c2", alice, bob)
        let connected = t.connected(active, at: t0 + 3_000)
        // The first, from either party on either node, sets it; a repeat changes nothing.
        #expect(
            try await t.apply(.connect, from: bob, to: alice, callId: nil, now: t0 + 3_000, on: t.fixture.n2)
                == .connected(connected, first: true)
        )
        #expect(
            try await t.apply(.connect, from: alice, to: bob, callId: active.id, now: t0 + 4_000, on: t.fixture.n1)
                == .connected(connected, first: false)
        )
        #expect(try await t.apply(.connect, from: carol, to: bob, callId: active.id, on: t.fixture.n1).isNoCall)
        // Whichever node ends the call knows when it connected.
        #expect(
            try await t.apply(.hangup, from: alice, to: bob, callId: active.id, now: t0 + 9_000, on: t.fixture.n1)
                == .ended(connected, status: .hungUp, peerNode: "n2")
        )
        #expect(try await t.apply(.connect, from: bob, to: alice, callId: active.id, on: t.fixture.n2).isNoCall, "ended")
        // A clock behind the accept's: connected no earlier than started.
        let early = try await t.establish("c3", alice, bob)
        #expect(
            try await t.apply(.connect, from: alice, to: bob, callId: early.id, now: t0, on: t.fixture.n1)
                == .connected(t.connected(early, at: t0 + 1_000), first: true)
        )
    }

    private static func restoreConnected(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let lost = Call(
            id: t.id("c1"),
            caller: alice,
            callee: bob,
            callType: .audio,
            createdAt: t0,
            state: .active,
            startedAt: t0 + 1_000,
            connectedAt: t0 + 2_000
        )
        #expect(try await t.ask { t.fixture.n1.restore(lost, now: t0 + 3_000, then: $0) })
        #expect(
            try await t.apply(.connect, from: bob, to: alice, callId: lost.id, now: t0 + 4_000, on: t.fixture.n2)
                == .connected(lost, first: false)
        )
        #expect(
            try await t.apply(.hangup, from: bob, to: alice, callId: nil, on: t.fixture.n2)
                == .ended(lost, status: .hungUp, peerNode: "n1")
        )
    }

    private static func restore(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let carol = try await t.online("carol", on: "n1")
        let lost = Call(
            id: t.id("c1"),
            caller: alice,
            callee: bob,
            callType: .audio,
            createdAt: t0,
            state: .active,
            startedAt: t0 + 1_000
        )
        #expect(try await t.ask { t.fixture.n1.restore(lost, now: t0 + 2_000, then: $0) })
        #expect(try await t.apply(.lookup, from: bob, to: alice, callId: nil, on: t.fixture.n2) == .found(lost, peerNode: "n1"))
        // Taken: the same id, or a party in another call.
        #expect(try await t.ask { t.fixture.n2.restore(lost, now: t0 + 2_000, then: $0) } == false)
        #expect(try await t.ask { t.fixture.n2.restore(t.call("c2", carol, bob), now: t0 + 2_000, then: $0) } == false)
        #expect(try await t.apply(.lookup, from: carol, to: bob, callId: t.id("c2"), on: t.fixture.n1).isNoCall)
    }

    private static func racingAccepts(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let call = try await t.ring("c1", alice, bob)
        let outcomes = try await withThrowingTaskGroup(of: TransitionOutcome.self) { group in
            for i in 0..<16 {
                let store = i.isMultiple(of: 2) ? t.fixture.n1 : t.fixture.n2
                group.addTask { try await t.apply(.accept, from: bob, to: alice, callId: call.id, now: t0 + Int64(i), on: store) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter(\.isAccepted).count == 1, "\(outcomes)")
        #expect(outcomes.filter(\.isNoCall).count == 15)
    }

    private static func racingInvites(_ t: Context) async throws {
        let bob = try await t.online("bob", on: "n2")
        var callers: [String] = []
        for i in 0..<12 { callers.append(try await t.online("caller\(i)", on: i.isMultiple(of: 2) ? "n1" : "n2")) }
        let outcomes = try await withThrowingTaskGroup(of: InviteOutcome.self) { group in
            for (i, caller) in callers.enumerated() {
                let store = i.isMultiple(of: 2) ? t.fixture.n1 : t.fixture.n2
                group.addTask { try await t.invite(t.call("c\(i)", caller, bob), on: store) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter(\.isRinging).count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == .busy(idIsLive: false) }.count == 11)
    }

    private static func acceptAgainstHangup(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        for round in 0..<8 {
            let call = try await t.ring("r\(round)", alice, bob)
            async let accepted = t.apply(.accept, from: bob, to: alice, callId: call.id, now: t0 + 10, on: t.fixture.n2)
            async let hungUp = t.apply(.hangup, from: alice, to: bob, callId: call.id, now: t0 + 10, on: t.fixture.n1)
            let (accept, hangup) = try await (accepted, hungUp)
            // Hangup first: the accept finds no call. Accept first: the hangup ends the active call.
            #expect(hangup.isEnded, "round \(round): \(hangup)")
            if accept.isAccepted {
                #expect(hangup.call?.state == .active, "round \(round): the hangup ended the accepted call")
            } else {
                #expect(accept.isNoCall && hangup.call?.state == .ringing, "round \(round): \(accept), \(hangup)")
            }
            #expect(try await t.apply(.lookup, from: alice, to: bob, callId: call.id, on: t.fixture.n1).isNoCall)
        }
    }

    private static func glare(_ t: Context) async throws {
        let (alice, bob) = try await t.online("alice", on: "n1", "bob", on: "n2")
        let standing = try await t.ring("c1", alice, bob)
        // Bob calls Alice back while her call rings: no second call; hers is named, still ringing.
        #expect(try await t.invite(t.call("c2", bob, alice), on: t.fixture.n2) == .glare(standing))
        #expect(try await t.invite(t.call("c3", bob, alice), on: t.fixture.n1) == .glare(standing))
        #expect(try await t.apply(.lookup, from: bob, to: alice, callId: t.id("c2"), on: t.fixture.n2).isNoCall)
        #expect(
            try await t.apply(.lookup, from: bob, to: alice, callId: nil, on: t.fixture.n2) == .found(standing, peerNode: "n1")
        )
        // Bob may accept it; once it is active, calling back is busy.
        #expect(try await t.apply(.accept, from: bob, to: alice, callId: standing.id, on: t.fixture.n2).isAccepted)
        #expect(try await t.invite(t.call("c4", bob, alice), on: t.fixture.n2) == .busy(idIsLive: false))
    }

    private static func racingCrossInvites(_ t: Context) async throws {
        for round in 0..<8 {
            let (alice, bob) = try await t.online("alice\(round)", on: "n1", "bob\(round)", on: "n2")
            // Five invites each way at once, through both nodes.
            let invites = (0..<10).map { i in
                i < 5 ? t.call("r\(round)a\(i)", alice, bob) : t.call("r\(round)b\(i)", bob, alice)
            }
            let outcomes = try await withThrowingTaskGroup(of: (Call, InviteOutcome).self) { group in
                for (i, call) in invites.enumerated() {
                    let store = i.isMultiple(of: 2) ? t.fixture.n1 : t.fixture.n2
                    group.addTask { (call, try await t.invite(call, on: store)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let ringing = outcomes.compactMap { _, outcome -> Call? in
                if case .ringing(let call, _) = outcome { return call }
                return nil
            }
            try #require(ringing.count == 1, "round \(round): \(outcomes)")
            let winner = ringing[0]
            for (call, outcome) in outcomes where call.id != winner.id {
                // The winner's direction meets its own caller busy; the other direction meets glare.
                let expected: InviteOutcome = call.caller == winner.caller ? .busy(idIsLive: false) : .glare(winner)
                #expect(outcome == expected, "round \(round): \(call.id) answered \(outcome)")
            }
            let callee = winner.callee
            #expect(try await t.apply(.accept, from: callee, to: winner.caller, callId: nil, on: t.fixture.n1).isAccepted)
        }
    }
}

// MARK: - Context

/// One check's ids (a random prefix, so checks may share a store) and helpers that ask the stores.
private struct Context: Sendable {
    let fixture: any CallStoreFixture
    let prefix = "t\(UInt32.random(in: .min ... .max))-"

    init(fixture: some CallStoreFixture) {
        self.fixture = fixture
    }

    func user(_ name: String) -> String { prefix + name }
    func id(_ name: String) -> String { prefix + name }

    func online(_ name: String, on node: String) async throws -> String {
        let user = user(name)
        try await fixture.connect(user, on: node)
        return user
    }

    func online(_ a: String, on nodeA: String, _ b: String, on nodeB: String) async throws -> (String, String) {
        (try await online(a, on: nodeA), try await online(b, on: nodeB))
    }

    func call(_ name: String, _ caller: String, _ callee: String, _ type: CallType = .audio) -> Call {
        Call(id: id(name), caller: caller, callee: callee, callType: type, createdAt: t0)
    }

    /// Active call with `connectedAt`, for comparisons (`connectedAt` is set only by the stores).
    func connected(_ call: Call, at time: Int64) -> Call {
        Call(
            id: call.id,
            caller: call.caller,
            callee: call.callee,
            callType: call.callType,
            createdAt: call.createdAt,
            state: call.state,
            startedAt: call.startedAt,
            connectedAt: time
        )
    }

    /// Rings `caller` → `callee` from `n1` and checks that it rang.
    @discardableResult
    func ring(_ name: String, _ caller: String, _ callee: String) async throws -> Call {
        let call = call(name, caller, callee)
        let outcome = try await invite(call, on: fixture.n1)
        guard case .ringing(let ringing, _) = outcome else { throw Unexpected("invite answered \(outcome)") }
        return ringing
    }

    /// Rings and accepts (at `t0 + 1_000`) a call.
    func establish(_ name: String, _ caller: String, _ callee: String) async throws -> Call {
        let call = try await ring(name, caller, callee)
        let outcome = try await apply(.accept, from: callee, to: caller, callId: call.id, now: t0 + 1_000, on: fixture.n2)
        guard case .accepted(let active, _) = outcome else { throw Unexpected("accept answered \(outcome)") }
        return active
    }

    func invite(_ call: Call, on store: any CallStore) async throws -> InviteOutcome {
        try await ask { store.invite(call, then: $0) }
    }

    func apply(
        _ operation: CallOperation,
        from sender: String,
        to recipient: String,
        callId: String?,
        now: Int64 = t0 + 1_000,
        on store: any CallStore
    ) async throws -> TransitionOutcome {
        try await ask { store.apply(operation, from: sender, to: recipient, callId: callId, now: now, then: $0) }
    }

    /// Waits for a store's answer.
    func ask<Outcome: Sendable>(
        _ question: (@escaping @Sendable (CallStoreResult<Outcome>) -> Void) -> Void
    ) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            question { continuation.resume(with: $0) }
        }
    }
}

private struct Unexpected: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension InviteOutcome {
    fileprivate var isRinging: Bool {
        if case .ringing = self { return true }
        return false
    }
}

extension TransitionOutcome {
    fileprivate var call: Call? {
        switch self {
        case .accepted(let call, _), .ended(let call, _, _), .found(let call, _), .connected(let call, _): call
        case .noCall: nil
        }
    }

    fileprivate var isAccepted: Bool {
        if case .accepted = self { return true }
        return false
    }

    fileprivate var isEnded: Bool {
        if case .ended = self { return true }
        return false
    }

    fileprivate var isFound: Bool {
        if case .found = self { return true }
        return false
    }

    fileprivate var isNoCall: Bool {
        if case .noCall = self { return true }
        return false
    }
}
