import NIOCore
import SwitchboardCore

/// The call record snapshots waiting to be saved, oldest first, bounded in calls: what
/// ``CallRecordWriter`` holds while the store is slow or down.
///
/// A snapshot of a call already waiting merges into that call's entry, so a call takes one entry
/// however many transitions it makes before the store catches up, and such an update is never refused.
/// A snapshot of a new call is refused once `capacity` entries wait. The entry being saved no longer
/// counts, so at most `capacity` + 1 snapshots are held (more only for the rare snapshot whose parties
/// differ from its call's entry: it is kept apart, as the store would judge it apart).
///
/// Not thread-safe: the writer keeps it behind a lock.
struct CallRecordQueue {
    /// What ``enqueue(_:)`` did with a snapshot.
    enum Outcome: Equatable {
        /// Added as a new entry.
        case queued
        /// Merged into the waiting entry of its call.
        case merged
        /// Not kept: `capacity` entries wait and the call has none of them.
        case refused
    }

    /// A call the queue knows: its snapshots not yet saved (waiting or being saved), and where its last
    /// waiting entry is (`nil` while its only one is being saved).
    private struct Call {
        var unsaved: Int
        var lastWaiting: Int?
    }

    /// The most entries that wait at once (snapshots of calls already waiting merge and do not count).
    let capacity: Int
    private var entries = CircularBuffer<CallRecord>()
    /// The sequence number of `entries.first`; entry `n` is at offset `n - firstSequence`.
    private var firstSequence = 0
    /// The queued-id map: every call with a snapshot not yet saved.
    private var calls: [String: Call] = [:]

    init(capacity: Int) {
        precondition(capacity >= 1, "a record queue holds at least one entry")
        self.capacity = capacity
    }

    /// The entries waiting (not counting one being saved).
    var count: Int { entries.count }

    /// Whether a snapshot of `callId` waits or is being saved.
    func contains(callId: String) -> Bool {
        calls[callId] != nil
    }

    /// Adds `record`, merges it into its call's waiting entry, or refuses it (see ``Outcome``).
    mutating func enqueue(_ record: CallRecord) -> Outcome {
        if let call = calls[record.callId] {
            if let sequence = call.lastWaiting {
                let index = entries.index(entries.startIndex, offsetBy: sequence - firstSequence)
                if entries[index].hasSameParties(as: record) {
                    entries[index] = entries[index].followed(by: record)
                    return .merged
                }
            }
            // Its entry is being saved, or names other parties: a second entry, not refused (an update
            // of a call the writer holds never is).
        } else if entries.count >= capacity {
            return .refused
        }
        let sequence = firstSequence + entries.count
        entries.append(record)
        calls[record.callId, default: Call(unsaved: 0)].unsaved += 1
        calls[record.callId]!.lastWaiting = sequence
        return .queued
    }

    /// Takes the oldest entry to save it; its call stays known until ``saved(callId:)``.
    mutating func next() -> CallRecord? {
        guard let record = entries.popFirst() else { return nil }
        if calls[record.callId]?.lastWaiting == firstSequence {
            calls[record.callId]!.lastWaiting = nil
        }
        firstSequence += 1
        return record
    }

    /// A snapshot of `callId` taken by ``next()`` was saved (or failed to be).
    mutating func saved(callId: String) {
        guard let call = calls[callId] else { return }
        if call.unsaved <= 1 {
            calls[callId] = nil
        } else {
            calls[callId]!.unsaved -= 1
        }
    }
}

extension CallRecord {
    fileprivate func hasSameParties(as other: CallRecord) -> Bool {
        callerId == other.callerId && calleeId == other.calleeId
    }

    /// What the store holds after saving `self` and then `later`, two snapshots of one call with the same
    /// parties (``CallRecordStore/save(_:)``): `later`, keeping `self`'s `createdAt` (and `connectedTime`
    /// when `later` has none), unless `later` would take the call back (ended → accepted → invite), in
    /// which case `self`.
    fileprivate func followed(by later: CallRecord) -> CallRecord {
        guard min(later.status.rawValue, 2) >= min(status.rawValue, 2) else { return self }
        var merged = later
        merged.createdAt = createdAt
        merged.connectedTime = later.connectedTime ?? connectedTime
        return merged
    }
}
