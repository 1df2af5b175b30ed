import PostgresNIO
import SwitchboardCore

extension CallRecord {
    /// The columns every query selects and every save binds; ``init(postgresRow:)`` reads them by name.
    static let postgresColumns =
        "call_id, caller_id, callee_id, call_type, status, start_time, end_time, duration, end_reason, created_at, updated_at, connected_time"

    /// `INSERT … ON CONFLICT (call_id) DO UPDATE` of this record: the first snapshot's row id, creation time
    /// and parties are kept, the other columns take the new value; a snapshot naming other parties changes
    /// nothing (a record's parties never change, PROTOCOL.md §9), and so does one that would take the call
    /// back (ended → accepted → invite): in a cluster two nodes write one call's snapshots, in any order.
    func postgresUpsert() throws -> PostgresQuery {
        let startTime = try self.startTime.map(PostgresTimestamp.init(milliseconds:))
        let endTime = try self.endTime.map(PostgresTimestamp.init(milliseconds:))
        let createdAt = try PostgresTimestamp(milliseconds: self.createdAt)
        let updatedAt = try PostgresTimestamp(milliseconds: self.updatedAt)
        let connectedTime = try self.connectedTime.map(PostgresTimestamp.init(milliseconds:))
        return """
            INSERT INTO call_records (\(unescaped: Self.postgresColumns))
            VALUES (\(callId), \(callerId), \(calleeId), \(Int16(callType.rawValue)), \(Int16(status.rawValue)),
                    \(startTime), \(endTime), \(Int64(duration)), \(endReason), \(createdAt), \(updatedAt),
                    \(connectedTime))
            ON CONFLICT (call_id) DO UPDATE SET
                call_type = EXCLUDED.call_type,
                status = EXCLUDED.status,
                start_time = EXCLUDED.start_time,
                end_time = EXCLUDED.end_time,
                duration = EXCLUDED.duration,
                end_reason = EXCLUDED.end_reason,
                updated_at = EXCLUDED.updated_at,
                connected_time = COALESCE(EXCLUDED.connected_time, call_records.connected_time)
            WHERE call_records.caller_id = EXCLUDED.caller_id AND call_records.callee_id = EXCLUDED.callee_id
                AND LEAST(EXCLUDED.status, 2) >= LEAST(call_records.status, 2)
            """
    }

    /// Decodes a row selected with ``postgresColumns``; throws `corruptRow` naming the column that does not fit.
    init(postgresRow row: PostgresRow) throws {
        let cells = row.makeRandomAccess()
        let callIdForMessage = (try? cells["call_id"].decode(String.self)) ?? "?"
        func corrupt(_ column: String, _ why: String) -> CallRecordStoreError {
            CallRecordStoreError(.postgres, .corruptRow, "call_records.\(column) \(why) (call_id \(callIdForMessage))")
        }
        func value<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
            guard cells.contains(column) else { throw corrupt(column, "is missing from the result") }
            do {
                return try cells[column].decode(T.self)
            } catch {
                throw corrupt(column, "cannot be read as \(T.self) (type \(cells[column].dataType))")
            }
        }
        func time(_ column: String) throws -> Int64 {
            guard let milliseconds = try value(column, as: PostgresTimestamp.self).milliseconds else {
                throw corrupt(column, "holds a time outside the model's range (infinity?)")
            }
            return milliseconds
        }
        func optionalTime(_ column: String) throws -> Int64? {
            try value(column, as: PostgresTimestamp?.self) == nil ? nil : try time(column)
        }

        let callTypeValue = try value("call_type", as: Int.self)
        guard let callType = CallType(rawValue: callTypeValue) else { throw corrupt("call_type", "holds \(callTypeValue)") }
        let statusValue = try value("status", as: Int.self)
        guard let status = CallStatus(rawValue: statusValue) else { throw corrupt("status", "holds \(statusValue)") }
        self.init(
            callId: try value("call_id"),
            callerId: try value("caller_id"),
            calleeId: try value("callee_id"),
            callType: callType,
            status: status,
            startTime: try optionalTime("start_time"),
            endTime: try optionalTime("end_time"),
            duration: try value("duration"),
            endReason: try value("end_reason", as: String?.self),
            connectedTime: try optionalTime("connected_time"),
            createdAt: try time("created_at"),
            updatedAt: try time("updated_at")
        )
    }
}
