import NIOCore
import PostgresNIO

/// A `timestamptz` bound and read in PostgreSQL's binary format: microseconds since 2000-01-01 UTC.
///
/// The model keeps unix milliseconds; PostgresNIO's `Date` coding goes through `Double` seconds and may
/// land a microsecond off, so this converts with integers only and every millisecond round-trips exactly.
/// A stored time with sub-millisecond digits (written by hand) reads back truncated towards the past.
struct PostgresTimestamp: Sendable, Hashable {
    /// 2000-01-01T00:00:00Z in unix milliseconds: PostgreSQL's epoch.
    static let postgresEpochMilliseconds: Int64 = 946_684_800_000
    /// The earliest time `timestamptz` holds, 4714-11-24T00:00:00Z BC, in unix milliseconds.
    static let minMilliseconds: Int64 = -211_813_488_000_000 + postgresEpochMilliseconds
    /// The latest whole millisecond `timestamptz` holds, 294276-12-31T23:59:59.999Z, in unix milliseconds.
    static let maxMilliseconds: Int64 = 9_223_371_331_200_000 + postgresEpochMilliseconds - 1

    /// Microseconds since 2000-01-01T00:00:00Z, as PostgreSQL stores them.
    let microseconds: Int64

    /// The timestamp of unix time `milliseconds`; throws `timeOutOfRange` where `timestamptz` cannot hold it.
    init(milliseconds: Int64) throws {
        guard (Self.minMilliseconds...Self.maxMilliseconds).contains(milliseconds) else {
            throw CallRecordStoreError(
                .postgres,
                .timeOutOfRange,
                "\(milliseconds) ms is outside what timestamptz holds (4713 BC … 294276 AD)"
            )
        }
        microseconds = (milliseconds - Self.postgresEpochMilliseconds) * 1_000
    }

    /// A timestamp read from the server, as is.
    init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    /// Unix milliseconds, or `nil` for `±infinity` and anything else outside ``minMilliseconds``…``maxMilliseconds``.
    var milliseconds: Int64? {
        let (quotient, remainder) = microseconds.quotientAndRemainder(dividingBy: 1_000)
        let floored = remainder < 0 ? quotient - 1 : quotient
        let (milliseconds, overflow) = floored.addingReportingOverflow(Self.postgresEpochMilliseconds)
        guard !overflow, (Self.minMilliseconds...Self.maxMilliseconds).contains(milliseconds) else { return nil }
        return milliseconds
    }
}

extension PostgresTimestamp: PostgresNonThrowingEncodable {
    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(
        into byteBuffer: inout ByteBuffer,
        context: PostgresEncodingContext<JSONEncoder>
    ) {
        byteBuffer.writeInteger(microseconds)
    }
}

extension PostgresTimestamp: PostgresDecodable {
    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer,
        type: PostgresDataType,
        format: PostgresFormat,
        context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp else { throw PostgresDecodingError.Code.typeMismatch }
        guard format == .binary, buffer.readableBytes == 8, let microseconds = buffer.readInteger(as: Int64.self) else {
            throw PostgresDecodingError.Code.failure
        }
        self.init(microseconds: microseconds)
    }
}
