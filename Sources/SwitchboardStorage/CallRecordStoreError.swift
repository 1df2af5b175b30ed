/// A failure of a call-record store (``SQLiteCallRecordStore``, ``PostgresCallRecordStore``) or of parsing
/// its `--database` URL.
///
/// SQLite's own errors surface as `SQLiteError`. PostgresNIO's print only a generic text (to keep secrets
/// out of responses), so the PostgreSQL store wraps them in ``Code-swift.struct/connectionFailed`` or
/// ``Code-swift.struct/databaseError`` with the server's message and SQLSTATE, which is what an operator
/// needs in a log line.
public struct CallRecordStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store that failed.
    public enum Store: Sendable, Hashable {
        /// ``SQLiteCallRecordStore`` (`sqlite:` URLs).
        case sqlite
        /// ``PostgresCallRecordStore`` (`postgres://` and `postgresql://` URLs).
        case postgres
    }

    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: Sendable, Hashable {
            case invalidURL, tlsNotSupported, connectionFailed, databaseError
            case storeShutDown, timeOutOfRange, corruptRow, schemaTooNew
        }
        private let value: Value

        /// The database URL is not one this store understands.
        public static let invalidURL = Code(value: .invalidURL)
        /// PostgreSQL: the URL asks for TLS (`sslmode=require`, `verify-ca` or `verify-full`), which the store
        /// does not speak.
        public static let tlsNotSupported = Code(value: .tlsNotSupported)
        /// PostgreSQL: the server could not be reached, or refused the login (wrong password, unknown database, …).
        public static let connectionFailed = Code(value: .connectionFailed)
        /// PostgreSQL: the server answered a statement with an error, or the connection broke during one.
        public static let databaseError = Code(value: .databaseError)
        /// The store was used after its `shutdown()`.
        public static let storeShutDown = Code(value: .storeShutDown)
        /// A time lies outside what the store can hold (SQLite: four-digit years, 0000…9999; PostgreSQL's
        /// `timestamptz`: 4713 BC … 294276 AD).
        public static let timeOutOfRange = Code(value: .timeOutOfRange)
        /// A stored row holds a value the model cannot represent (unknown status, malformed or infinite time, …).
        public static let corruptRow = Code(value: .corruptRow)
        /// The database was migrated by a newer build that knows schema versions this one does not.
        public static let schemaTooNew = Code(value: .schemaTooNew)

        public var description: String { "\(value)" }
    }

    /// The store that failed.
    public let store: Store
    /// The kind of failure.
    public let code: Code
    /// Details for logs. Never holds a password.
    public let message: String
    /// PostgreSQL: the server's SQLSTATE (`42P01`, `28P01`, …) when the server reported the error.
    public let sqlState: String?

    /// Creates an error of `store` with a code, a message and, for server errors, the SQLSTATE.
    public init(_ store: Store, _ code: Code, _ message: String, sqlState: String? = nil) {
        self.store = store
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// `SQLiteCallRecordStoreError.CODE: MESSAGE` or `PostgresCallRecordStoreError.CODE: MESSAGE (SQLSTATE …)`:
    /// the texts logs and start-up failures showed when each store had an error type of its own.
    public var description: String {
        let prefix = store == .sqlite ? "SQLiteCallRecordStoreError" : "PostgresCallRecordStoreError"
        return "\(prefix).\(code): \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }
}
