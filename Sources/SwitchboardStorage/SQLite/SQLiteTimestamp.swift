import SwitchboardBasics

/// Converts unix milliseconds to and from the text stored in SQLite: ISO-8601 UTC with milliseconds,
/// `2026-11-25T12:00:00.123Z` (``ISO8601Timestamp``), limited to four-digit years so that the text is fixed
/// width, text order is time order and `sqlite3` shows it plainly.
enum SQLiteTimestamp {
    /// `0000-01-01T00:00:00.000Z`, the earliest time with a four-digit year.
    static let minMilliseconds = ISO8601Timestamp.minFourDigitYearMilliseconds
    /// `9999-12-31T23:59:59.999Z`, the latest time with a four-digit year.
    static let maxMilliseconds = ISO8601Timestamp.maxFourDigitYearMilliseconds

    /// The ISO-8601 text of `milliseconds`; throws `timeOutOfRange` outside years 0000…9999.
    static func format(_ milliseconds: Int64) throws -> String {
        guard (minMilliseconds...maxMilliseconds).contains(milliseconds) else {
            throw CallRecordStoreError(
                .sqlite,
                .timeOutOfRange,
                "\(milliseconds) ms is outside 0000-01-01…9999-12-31 and cannot be stored as ISO-8601 text"
            )
        }
        return ISO8601Timestamp.format(milliseconds: milliseconds)
    }

    /// Unix milliseconds of a stored time, or `nil` if `text` is not one (see ``ISO8601Timestamp/parse(_:)``
    /// for the forms `sqlite3` edits may leave).
    static func parse(_ text: String) -> Int64? {
        ISO8601Timestamp.parse(text)
    }
}
