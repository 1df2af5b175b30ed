/// A failure of a call-record store (``SQLiteCallRecordStore``, ``PostgresCallRecordStore``) or of parsing
/// its `--database` URL.
///
/// SQLite's own errors surface as `SQLiteError`. PostgresNIO's print only a generic text (to keep secrets
/// out of responses), so the PostgreSQL store wraps them in ``Code-swift.struct/connectionFailed`` or
/// ``Code-swift.struct/databaseError`` with the server's message and SQLSTATE, which is what an operator
/// needs in a log line.
package struct CallRecordStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store that failed.
    package enum Store: Sendable, Hashable {
        /// ``SQLiteCallRecordStore`` (`sqlite:` URLs).
        case sqlite
        /// ``PostgresCallRecordStore`` (`postgres://` and `postgresql://` URLs).
        case postgres
    }

    /// What went wrong, as an extensible set of codes.
    package struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: Sendable, Hashable {
            case invalidURL, tlsNotSupported, connectionFailed, databaseError
            case storeShutDown, timeOutOfRange, corruptRow, schemaTooNew
        }
        private let value: Value

        /// The database URL is not one this store understands.
        package static let invalidURL = Code(value: .invalidURL)
        /// PostgreSQL: the URL asks for TLS (`sslmode=require`, `verify-ca` or `verify-full`), which the store
        /// does not speak.
        package static let tlsNotSupported = Code(value: .tlsNotSupported)
        /// PostgreSQL: the server could not be reached, or refused the login (wrong password, unknown database, …).
        package static let connectionFailed = Code(value: .connectionFailed)
        /// PostgreSQL: the server answered a statement with an error, or the connection broke during one.
        package static let databaseError = Code(value: .databaseError)
        /// The store was used after its `shutdown()`.
        package static let storeShutDown = Code(value: .storeShutDown)
        /// A time lies outside what the store can hold (SQLite: four-digit years, 0000…9999; PostgreSQL's
        /// `timestamptz`: 4713 BC … 294276 AD).
        package static let timeOutOfRange = Code(value: .timeOutOfRange)
        /// A stored row holds a value the model cannot represent (unknown status, malformed or infinite time, …).
        package static let corruptRow = Code(value: .corruptRow)
        /// The database was migrated by a newer build that knows schema versions this one does not.
        package static let schemaTooNew = Code(value: .schemaTooNew)

        package var description: String { "\(value)" }
    }

    /// The store that failed.
    package let store: Store
    /// The kind of failure.
    package let code: Code
    /// Details for logs. Never holds a password.
    package let message: String
    /// PostgreSQL: the server's SQLSTATE (`42P01`, `28P01`, …) when the server reported the error.
    package let sqlState: String?

    /// Creates an error of `store` with a code, a message and, for server errors, the SQLSTATE.
    package init(_ store: Store, _ code: Code, _ message: String, sqlState: String? = nil) {
        self.store = store
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// `SQLiteCallRecordStoreError.CODE: MESSAGE` or `PostgresCallRecordStoreError.CODE: MESSAGE (SQLSTATE …)`:
    /// the texts logs and start-up failures showed when each store had an error type of its own.
    package var description: String {
        let prefix = store == .sqlite ? "SQLiteCallRecordStoreError" : "PostgresCallRecordStoreError"
        return "\(prefix).\(code): \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }
}
