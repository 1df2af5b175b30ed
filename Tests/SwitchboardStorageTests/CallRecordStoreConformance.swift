import SwitchboardCore
import Testing

/// Behaviour every `CallRecordStore` must show, written once and run against each implementation
/// (SQLite here; a PostgreSQL store runs the very same checks with its own factory).
///
/// Usage from a suite:
/// ```swift
/// @Test(arguments: CallRecordStoreConformance.Check.allCases)
/// func conformance(_ check: CallRecordStoreConformance.Check) async throws {
///     try await CallRecordStoreConformance.run(check) { MyStore(...) }
/// }
/// ```
/// Each check makes its own user and call ids (random prefix), so checks may share one database.
enum CallRecordStoreConformance {
    /// Makes a fresh, not yet migrated store.
    typealias Factory = @Sendable () async throws -> any CallRecordStore

    /// One check of the contract.
    enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case migrateTwice
        case insertThenReadBackEveryField
        case insertThenReadBackNilOptionals
        case unknownCallIdIsNil
        case upsertKeepsCreatedAtAndUpdatesTheRest
        case upsertNeverChangesParties
        case upsertNeverTakesACallBack
        case recordsInvolvingFindsBothSides
        case recordsInvolvingNewestFirst
        case recordsInvolvingTieBreaksByInsertionOrder
        case recordsInvolvingRespectsLimit
        case recordsInvolvingExcludesOthers
        case everyStatusAndCallTypeRoundTrips
        case timesRoundTripExactly
        case concurrentSaves
        case connectedTimeIsKeptByLaterSnapshots

        var testDescription: String { rawValue }

        /// Runs this check on a migrated store.
        func run(on store: any CallRecordStore) async throws {
            let ids = IDs()
            switch self {
            case .migrateTwice: try await CallRecordStoreConformance.migrateTwice(store, ids)
            case .insertThenReadBackEveryField: try await CallRecordStoreConformance.insertThenReadBackEveryField(store, ids)
            case .insertThenReadBackNilOptionals: try await CallRecordStoreConformance.insertThenReadBackNilOptionals(store, ids)
            case .unknownCallIdIsNil: try await CallRecordStoreConformance.unknownCallIdIsNil(store, ids)
            case .upsertKeepsCreatedAtAndUpdatesTheRest: try await CallRecordStoreConformance.upsert(store, ids)
            case .upsertNeverChangesParties: try await CallRecordStoreConformance.partiesNeverChange(store, ids)
            case .upsertNeverTakesACallBack: try await CallRecordStoreConformance.neverBack(store, ids)
            case .recordsInvolvingFindsBothSides: try await CallRecordStoreConformance.findsBothSides(store, ids)
            case .recordsInvolvingNewestFirst: try await CallRecordStoreConformance.newestFirst(store, ids)
            case .recordsInvolvingTieBreaksByInsertionOrder: try await CallRecordStoreConformance.tieBreak(store, ids)
            case .recordsInvolvingRespectsLimit: try await CallRecordStoreConformance.respectsLimit(store, ids)
            case .recordsInvolvingExcludesOthers: try await CallRecordStoreConformance.excludesOthers(store, ids)
            case .everyStatusAndCallTypeRoundTrips: try await CallRecordStoreConformance.everyEnumCase(store, ids)
            case .timesRoundTripExactly: try await CallRecordStoreConformance.timesRoundTrip(store, ids)
            case .concurrentSaves: try await CallRecordStoreConformance.concurrentSaves(store, ids)
            case .connectedTimeIsKeptByLaterSnapshots: try await CallRecordStoreConformance.connectedTime(store, ids)
            }
        }
    }

    /// Makes a store, migrates it, runs `check`, and always shuts the store down.
    static func run(_ check: Check, using factory: Factory) async throws {
        try await withMigratedStore(factory) { try await check.run(on: $0) }
    }

    /// Makes a store, migrates it, runs `body`, and always shuts the store down (even when `body` throws).
    static func withMigratedStore(
        _ factory: Factory,
        _ body: (any CallRecordStore) async throws -> Void
    ) async throws {
        let store = try await factory()
        do {
            try await store.migrate()
            try await body(store)
        } catch {
            try? await store.shutdown()
            throw error
        }
        try await store.shutdown()
    }

    /// Unique names for one run of a check.
    struct IDs: Sendable {
        let prefix = "t\(UInt64.random(in: 0...UInt64.max))-"
        func user(_ name: String) -> String { prefix + name }
        func call(_ name: String) -> String { prefix + "call-" + name }
    }

    /// 2026-11-25T12:00:00.123Z: a time with milliseconds, so truncation to seconds would show.
    static let base: Int64 = 1_795_608_000_123

    /// A complete record: every optional set.
    static func fullRecord(_ ids: IDs, _ name: String = "full", createdAt: Int64 = base) -> CallRecord {
        CallRecord(
            callId: ids.call(name),
            callerId: ids.user("alice"),
            calleeId: ids.user("bob"),
            callType: .video,
            status: .hungUp,
            startTime: createdAt + 4_321,
            endTime: createdAt + 65_432,
            duration: 61,
            endReason: "hangup: caller left ✓",
            connectedTime: createdAt + 4_999,
            createdAt: createdAt,
            updatedAt: createdAt + 65_433
        )
    }

    /// A fresh invite: every optional nil.
    static func invite(
        _ ids: IDs,
        _ name: String,
        caller: String = "alice",
        callee: String = "bob",
        createdAt: Int64 = base
    ) -> CallRecord {
        CallRecord(
            callId: ids.call(name),
            callerId: ids.user(caller),
            calleeId: ids.user(callee),
            callType: .audio,
            status: .invite,
            createdAt: createdAt,
            updatedAt: createdAt
        )
    }

    // MARK: Checks

    static func migrateTwice(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let record = fullRecord(ids)
        try await store.save(record)
        try await store.migrate()
        try await store.migrate()
        #expect(try await store.record(callId: record.callId) == record, "migrating again keeps the data")
    }

    static func insertThenReadBackEveryField(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let record = fullRecord(ids)
        try await store.save(record)
        let read = try #require(try await store.record(callId: record.callId))
        #expect(read.callId == record.callId)
        #expect(read.callerId == record.callerId)
        #expect(read.calleeId == record.calleeId)
        #expect(read.callType == .video)
        #expect(read.status == .hungUp)
        #expect(read.startTime == record.startTime)
        #expect(read.endTime == record.endTime)
        #expect(read.duration == 61)
        #expect(read.endReason == "hangup: caller left ✓")
        #expect(read.createdAt == record.createdAt)
        #expect(read.updatedAt == record.updatedAt)
        #expect(read == record)
    }

    static func insertThenReadBackNilOptionals(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let record = invite(ids, "nil")
        try await store.save(record)
        let read = try #require(try await store.record(callId: record.callId))
        #expect(read.startTime == nil)
        #expect(read.endTime == nil)
        #expect(read.endReason == nil)
        #expect(read.duration == 0)
        #expect(read == record)
    }

    static func unknownCallIdIsNil(_ store: any CallRecordStore, _ ids: IDs) async throws {
        try await store.save(invite(ids, "known"))
        #expect(try await store.record(callId: ids.call("unknown")) == nil)
    }

    /// A snapshot with the same call id but other parties (a client reusing someone else's id) changes nothing.
    static func partiesNeverChange(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let original = fullRecord(ids, "taken")
        try await store.save(original)
        var hijack = invite(ids, "taken", caller: "mallory", callee: "carol", createdAt: base + 5_000)
        hijack.status = .failed
        hijack.endReason = "overwritten"
        try await store.save(hijack)
        var halfHijack = original
        halfHijack.calleeId = ids.user("carol")
        halfHijack.status = .failed
        try await store.save(halfHijack)

        let read = try #require(try await store.record(callId: original.callId))
        #expect(read == original, "the row is as its own parties left it")
        #expect(try await store.records(involving: ids.user("mallory"), limit: 10).isEmpty)
        #expect(try await store.records(involving: ids.user("carol"), limit: 10).isEmpty)
        #expect(try await store.records(involving: original.calleeId, limit: 10).count == 1, "the victim keeps the call")
    }

    /// Two nodes' snapshots of one call arrive out of order: the hangup's stays.
    static func neverBack(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let invite = invite(ids, "late")
        var accepted = invite
        accepted.status = .accepted
        accepted.startTime = base + 1_000
        accepted.updatedAt = base + 1_000
        var ended = accepted
        ended.status = .hungUp
        ended.endTime = base + 9_000
        ended.duration = 8
        ended.endReason = "hangup"
        ended.updatedAt = base + 9_000
        for record in [invite, ended, accepted, invite] { try await store.save(record) }
        #expect(try await store.record(callId: invite.callId) == ended)
        var acceptedFirst = invite
        acceptedFirst.callId = ids.call("late-2")
        acceptedFirst.status = .accepted
        var inviteLater = acceptedFirst
        inviteLater.status = .invite
        for record in [acceptedFirst, inviteLater] { try await store.save(record) }
        #expect(try await store.record(callId: acceptedFirst.callId)?.status == .accepted)
    }

    /// `connected_time` (PROTOCOL.md §8): set by the connected snapshot, kept by a later one without it
    /// (a node that did not see the call connect), listed with the rest.
    static func connectedTime(_ store: any CallRecordStore, _ ids: IDs) async throws {
        var accepted = invite(ids, "connected")
        accepted.status = .accepted
        accepted.startTime = base + 1_000
        try await store.save(accepted)
        #expect(try await store.record(callId: accepted.callId)?.connectedTime == nil)
        var connected = accepted
        connected.connectedTime = base + 2_500
        connected.updatedAt = base + 2_500
        try await store.save(connected)
        #expect(try await store.record(callId: accepted.callId) == connected)
        var ended = accepted
        (ended.status, ended.endTime, ended.duration) = (.hungUp, base + 9_000, 8)
        (ended.endReason, ended.updatedAt) = ("ice-failed", base + 9_000)
        try await store.save(ended)
        var expected = ended
        expected.connectedTime = base + 2_500
        #expect(try await store.record(callId: accepted.callId) == expected)
        #expect(try await store.records(involving: accepted.calleeId, limit: 5) == [expected])
    }

    static func upsert(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let first = invite(ids, "upsert")
        try await store.save(first)

        var accepted = first
        accepted.status = .accepted
        accepted.startTime = base + 2_000
        accepted.updatedAt = base + 2_000
        accepted.createdAt = base + 999_999  // a later snapshot's creation time must not replace the first
        try await store.save(accepted)

        var ended = accepted
        ended.status = .hungUp
        ended.endTime = base + 62_500
        ended.duration = 60
        ended.endReason = "hangup"
        ended.updatedAt = base + 62_500
        try await store.save(ended)

        let read = try #require(try await store.record(callId: first.callId))
        #expect(read.createdAt == first.createdAt, "created_at is kept from the first insert")
        #expect(read.status == .hungUp)
        #expect(read.startTime == base + 2_000)
        #expect(read.endTime == base + 62_500)
        #expect(read.duration == 60)
        #expect(read.endReason == "hangup")
        #expect(read.updatedAt == base + 62_500)

        let listed = try await store.records(involving: first.callerId, limit: 10)
        #expect(listed.count == 1, "an upsert never adds a second row")

        // Later snapshots may also clear optionals.
        var cleared = ended
        cleared.status = .failed
        cleared.startTime = nil
        cleared.endTime = nil
        cleared.endReason = nil
        cleared.duration = 0
        try await store.save(cleared)
        let reread = try #require(try await store.record(callId: first.callId))
        var expected = cleared
        expected.createdAt = first.createdAt
        #expect(reread == expected)
    }

    static func findsBothSides(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let outgoing = invite(ids, "out", caller: "carol", callee: "dave", createdAt: base)
        let incoming = invite(ids, "in", caller: "erin", callee: "carol", createdAt: base + 1)
        try await store.save(outgoing)
        try await store.save(incoming)
        let carol = try await store.records(involving: ids.user("carol"), limit: 10)
        #expect(carol.map(\.callId) == [incoming.callId, outgoing.callId])
        #expect(try await store.records(involving: ids.user("dave"), limit: 10) == [outgoing])
        #expect(try await store.records(involving: ids.user("erin"), limit: 10) == [incoming])
    }

    static func newestFirst(_ store: any CallRecordStore, _ ids: IDs) async throws {
        // Inserted out of order, and spanning a day and a year boundary, to catch text-vs-time ordering.
        let times: [Int64] = [
            base, base - 86_400_000, base + 1, base - 400 * 86_400_000, base + 999, base - 1,
        ]
        for (index, time) in times.enumerated() {
            try await store.save(invite(ids, "n\(index)", createdAt: time))
        }
        let listed = try await store.records(involving: ids.user("alice"), limit: 100)
        #expect(listed.map(\.createdAt) == times.sorted(by: >))
    }

    static func tieBreak(_ store: any CallRecordStore, _ ids: IDs) async throws {
        for name in ["first", "second", "third"] {
            try await store.save(invite(ids, name, createdAt: base))
        }
        let listed = try await store.records(involving: ids.user("bob"), limit: 10)
        #expect(listed.map(\.callId) == [ids.call("third"), ids.call("second"), ids.call("first")])
    }

    static func respectsLimit(_ store: any CallRecordStore, _ ids: IDs) async throws {
        for index in 0..<5 {
            try await store.save(invite(ids, "l\(index)", createdAt: base + Int64(index)))
        }
        let two = try await store.records(involving: ids.user("alice"), limit: 2)
        #expect(two.map(\.callId) == [ids.call("l4"), ids.call("l3")])
        #expect(try await store.records(involving: ids.user("alice"), limit: 1).map(\.callId) == [ids.call("l4")])
        #expect(try await store.records(involving: ids.user("alice"), limit: 100).count == 5)
        #expect(try await store.records(involving: ids.user("alice"), limit: 0).isEmpty)
    }

    static func excludesOthers(_ store: any CallRecordStore, _ ids: IDs) async throws {
        try await store.save(invite(ids, "mine", caller: "alice", callee: "bob"))
        try await store.save(invite(ids, "theirs", caller: "carol", callee: "dave"))
        try await store.save(invite(ids, "prefix", caller: "alice2", callee: "xalice"))
        let alice = try await store.records(involving: ids.user("alice"), limit: 10)
        #expect(alice.map(\.callId) == [ids.call("mine")])
        #expect(try await store.records(involving: ids.user("nobody"), limit: 10).isEmpty)
    }

    static func everyEnumCase(_ store: any CallRecordStore, _ ids: IDs) async throws {
        for status in CallStatus.allCases {
            for type in CallType.allCases {
                var record = fullRecord(ids, "\(status)-\(type)")
                record.status = status
                record.callType = type
                try await store.save(record)
                let read = try await store.record(callId: record.callId)
                #expect(read?.status == status)
                #expect(read?.callType == type)
                #expect(read == record)
            }
        }
    }

    static func timesRoundTrip(_ store: any CallRecordStore, _ ids: IDs) async throws {
        let times: [Int64] = [
            0, 1, 999, 1_000, 86_399_999,
            951_782_400_000,  // 2000-02-29T00:00:00.000Z, a leap day
            base, base + 1, 4_102_444_799_999,  // 2099-12-31T23:59:59.999Z
            -1, -86_400_001,  // before 1970
        ]
        for (index, time) in times.enumerated() {
            let record = CallRecord(
                callId: ids.call("t\(index)"),
                callerId: ids.user("a"),
                calleeId: ids.user("b"),
                callType: .audio,
                status: .accepted,
                startTime: time,
                endTime: time,
                createdAt: time,
                updatedAt: time
            )
            try await store.save(record)
            #expect(try await store.record(callId: record.callId) == record, "time \(time)")
        }
    }

    static func concurrentSaves(_ store: any CallRecordStore, _ ids: IDs) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await store.save(invite(ids, "c\(index)", createdAt: base + Int64(index)))
                    _ = try await store.record(callId: ids.call("c\(index)"))
                }
            }
            try await group.waitForAll()
        }
        let listed = try await store.records(involving: ids.user("alice"), limit: 100)
        #expect(listed.count == 40)
        #expect(listed.first?.callId == ids.call("c39"))
    }
}
