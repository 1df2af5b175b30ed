import SwitchboardBasics
import Testing

@Suite struct ISO8601TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_764_072_000_123, "2025-11-25T12:00:00.123Z"),
        (1_709_208_000_000, "2024-02-29T12:00:00.000Z"),  // leap day
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),  // divisible by 400: leap
        (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),  // divisible by 100: not leap, next is March 1
        (-1, "1969-12-31T23:59:59.999Z"),
        (-86_400_001, "1969-12-30T23:59:59.999Z"),
        (ISO8601Timestamp.minFourDigitYearMilliseconds, "0000-01-01T00:00:00.000Z"),
        (ISO8601Timestamp.maxFourDigitYearMilliseconds, "9999-12-31T23:59:59.999Z"),
    ])
    func formatsAndParses(milliseconds: Int64, text: String) {
        #expect(ISO8601Timestamp.format(milliseconds: milliseconds) == text)
        #expect(ISO8601Timestamp.parse(text) == milliseconds)
    }

    @Test func yearsBeyondFourDigits() {
        #expect(
            ISO8601Timestamp.format(milliseconds: ISO8601Timestamp.maxFourDigitYearMilliseconds + 1)
                == "10000-01-01T00:00:00.000Z"
        )
        #expect(
            ISO8601Timestamp.format(milliseconds: ISO8601Timestamp.minFourDigitYearMilliseconds - 1)
                == "-0001-12-31T23:59:59.999Z"
        )
        // The extremes of Int64 format without trapping (about 292 million years either way).
        #expect(ISO8601Timestamp.format(milliseconds: .max) == "292278994-08-17T07:12:55.807Z")
        #expect(ISO8601Timestamp.format(milliseconds: .min) == "-292275055-05-16T16:47:04.192Z")
        // Parsing takes four-digit years only.
        #expect(ISO8601Timestamp.parse("10000-01-01T00:00:00.000Z") == nil)
        #expect(ISO8601Timestamp.parse("-0001-12-31T23:59:59.999Z") == nil)
    }

    @Test func everyMillisecondOfADayRoundTrips() {
        let start: Int64 = 1_700_000_000_000
        for ms in stride(from: start, to: start + 86_400_000, by: 997) {
            #expect(ISO8601Timestamp.parse(ISO8601Timestamp.format(milliseconds: ms)) == ms)
        }
    }

    @Test func parsesSQLiteForms() {
        #expect(ISO8601Timestamp.parse("2025-11-25 12:00:00") == 1_764_072_000_000)
        #expect(ISO8601Timestamp.parse("2025-11-25T12:00:00.1Z") == 1_764_072_000_100)
        #expect(ISO8601Timestamp.parse("2025-11-25T12:00:00.123999Z") == 1_764_072_000_123)
    }

    @Test(arguments: [
        "", "2025-11-25", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-11-25T24:00:00Z",
        "2025-11-25T12:60:00Z", "2025-11-25T12:00:60Z", "2025-11-25T12:00:00.Z", "2025-11-25T12:00:00ZZ",
        "２０２５-11-25T12:00:00Z",
    ])
    func rejects(text: String) {
        #expect(ISO8601Timestamp.parse(text) == nil)
    }
}
