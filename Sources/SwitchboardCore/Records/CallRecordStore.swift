/// Durable storage of call records (`call_records`, PROTOCOL.md §5).
///
/// Implementations never block an event loop: SQLite runs on its own thread pool, PostgreSQL is non-blocking.
package protocol CallRecordStore: Sendable {
    /// Creates or migrates the schema. Called once at start-up, before any other method.
    func migrate() async throws
    /// Inserts the record, or updates the row with the same `callId` (an upsert keeping its `id`,
    /// `created_at` and parties): the latest snapshot wins. A snapshot whose caller or callee differs
    /// from the row's changes nothing: a record's parties never change. Nor does a snapshot that would take
    /// the call back (an ended call to accepted or invite, an accepted one to invite): in a cluster, two
    /// nodes write one call's snapshots and they may arrive in any order.
    func save(_ record: CallRecord) async throws
    /// The record of one call, if any.
    func record(callId: String) async throws -> CallRecord?
    /// The calls `user` took part in (as caller or callee), newest first.
    func records(involving user: String, limit: Int) async throws -> [CallRecord]
    /// Releases connections and threads.
    func shutdown() async throws
}
