/// A failure of ``SQLiteCallRecordStore`` that is not an SQLite error (those surface as `SQLiteError`).
public struct SQLiteCallRecordStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: Sendable, Hashable {
            case invalidURL, storeShutDown, timeOutOfRange, corruptRow, schemaTooNew
        }
        private let value: Value

        /// The database URL is not a `sqlite:` URL this store understands.
        public static let invalidURL = Code(value: .invalidURL)
        /// The store was used after ``SQLiteCallRecordStore/shutdown()``.
        public static let storeShutDown = Code(value: .storeShutDown)
        /// A time cannot be written as a four-digit-year ISO-8601 timestamp (before year 0000 or after 9999).
        public static let timeOutOfRange = Code(value: .timeOutOfRange)
        /// A stored row holds a value the model cannot represent (unknown status, malformed time, …).
        public static let corruptRow = Code(value: .corruptRow)
        /// The database was migrated by a newer build that knows schema versions this one does not.
        public static let schemaTooNew = Code(value: .schemaTooNew)

        public var description: String { "\(value)" }
    }

    /// The kind of failure.
    public let code: Code
    /// Details for logs.
    public let message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "SQLiteCallRecordStoreError.\(code): \(message)" }
}
