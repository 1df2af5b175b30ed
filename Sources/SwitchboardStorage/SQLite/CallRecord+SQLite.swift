import SQLiteNIO
import SwitchboardCore

extension CallRecord {
    /// The columns every query selects and every save binds; ``init(sqliteRow:)`` reads them by name.
    static let sqliteColumns =
        "call_id, caller_id, callee_id, call_type, status, start_time, end_time, duration, end_reason, created_at, updated_at, connected_time"

    /// The values bound to `?1`…`?12`, in ``sqliteColumns`` order.
    func sqliteBinds() throws -> [SQLiteData] {
        [
            .text(callId),
            .text(callerId),
            .text(calleeId),
            .integer(callType.rawValue),
            .integer(status.rawValue),
            try startTime.map { .text(try SQLiteTimestamp.format($0)) } ?? .null,
            try endTime.map { .text(try SQLiteTimestamp.format($0)) } ?? .null,
            .integer(duration),
            endReason.map { .text($0) } ?? .null,
            .text(try SQLiteTimestamp.format(createdAt)),
            .text(try SQLiteTimestamp.format(updatedAt)),
            try connectedTime.map { .text(try SQLiteTimestamp.format($0)) } ?? .null,
        ]
    }

    /// Decodes a row selected with ``sqliteColumns``.
    init(sqliteRow row: SQLiteRow) throws {
        func corrupt(_ column: String) -> CallRecordStoreError {
            CallRecordStoreError(
                .sqlite,
                .corruptRow,
                "call_records.\(column) holds \(row.column(column)?.description ?? "nothing") (call_id \(row.column("call_id")?.description ?? "?"))"
            )
        }
        func text(_ column: String) throws -> String {
            guard let value = row.column(column), !value.isNull, let string = value.string else { throw corrupt(column) }
            return string
        }
        func optionalText(_ column: String) throws -> String? {
            guard let value = row.column(column) else { throw corrupt(column) }
            return value.isNull ? nil : try text(column)
        }
        func integer(_ column: String) throws -> Int {
            guard let value = row.column(column)?.integer else { throw corrupt(column) }
            return value
        }
        func time(_ column: String) throws -> Int64 {
            guard let value = SQLiteTimestamp.parse(try text(column)) else { throw corrupt(column) }
            return value
        }
        func optionalTime(_ column: String) throws -> Int64? {
            try optionalText(column) == nil ? nil : try time(column)
        }

        guard let callType = CallType(rawValue: try integer("call_type")) else { throw corrupt("call_type") }
        guard let status = CallStatus(rawValue: try integer("status")) else { throw corrupt("status") }
        self.init(
            callId: try text("call_id"),
            callerId: try text("caller_id"),
            calleeId: try text("callee_id"),
            callType: callType,
            status: status,
            startTime: try optionalTime("start_time"),
            endTime: try optionalTime("end_time"),
            duration: try integer("duration"),
            endReason: try optionalText("end_reason"),
            connectedTime: try optionalTime("connected_time"),
            createdAt: try time("created_at"),
            updatedAt: try time("updated_at")
        )
    }
}
