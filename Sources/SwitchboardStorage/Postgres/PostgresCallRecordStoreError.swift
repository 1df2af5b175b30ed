/// A failure of ``PostgresCallRecordStore`` or of parsing a ``PostgresDatabaseURL``.
///
/// PostgresNIO's own errors print only a generic text (to keep secrets out of responses), so the store
/// wraps them in ``Code-swift.struct/connectionFailed`` or ``Code-swift.struct/databaseError`` with the
/// server's message and SQLSTATE, which is what an operator needs in a log line.
public struct PostgresCallRecordStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: Sendable, Hashable {
            case invalidURL, tlsNotSupported, connectionFailed, databaseError
            case storeShutDown, timeOutOfRange, corruptRow, schemaTooNew
        }
        private let value: Value

        /// The database URL is not a `postgres://` / `postgresql://` URL this store understands.
        public static let invalidURL = Code(value: .invalidURL)
        /// The URL asks for TLS (`sslmode=require`, `verify-ca` or `verify-full`), which this store does not speak.
        public static let tlsNotSupported = Code(value: .tlsNotSupported)
        /// The server could not be reached, or refused the login (wrong password, unknown database, …).
        public static let connectionFailed = Code(value: .connectionFailed)
        /// The server answered a statement with an error, or the connection broke during one.
        public static let databaseError = Code(value: .databaseError)
        /// The store was used after ``PostgresCallRecordStore/shutdown()``.
        public static let storeShutDown = Code(value: .storeShutDown)
        /// A time lies outside what `timestamptz` can hold (4713 BC … 294276 AD).
        public static let timeOutOfRange = Code(value: .timeOutOfRange)
        /// A stored row holds a value the model cannot represent (unknown status, infinite time, …).
        public static let corruptRow = Code(value: .corruptRow)
        /// The database was migrated by a newer build that knows schema versions this one does not.
        public static let schemaTooNew = Code(value: .schemaTooNew)

        public var description: String { "\(value)" }
    }

    /// The kind of failure.
    public let code: Code
    /// Details for logs. Never holds the password.
    public let message: String
    /// The server's SQLSTATE (`42P01`, `28P01`, …) when the server reported the error.
    public let sqlState: String?

    /// Creates an error with a code, a message and, for server errors, the SQLSTATE.
    public init(_ code: Code, _ message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String {
        "PostgresCallRecordStoreError.\(code): \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }
}
