import SwitchboardBasics
import Testing

@Suite struct DurationUnitsTests {
    @Test func milliseconds() {
        #expect(Duration.zero.wholeMilliseconds == 0)
        #expect(Duration.milliseconds(1500).wholeMilliseconds == 1500)
        #expect(Duration.seconds(3600).wholeMilliseconds == 3_600_000)
        #expect(Duration.microseconds(1999).wholeMilliseconds == 1)  // truncated, not rounded
        #expect(Duration.nanoseconds(999_999).wholeMilliseconds == 0)
    }

    @Test func negativeDurationsTruncateTowardsZero() {
        #expect(Duration.milliseconds(-1500).wholeMilliseconds == -1500)
        #expect(Duration.microseconds(-1999).wholeMilliseconds == -1)
        #expect(Duration.nanoseconds(-1).wholeMilliseconds == 0)
        #expect(Duration.nanoseconds(-1).wholeNanoseconds == -1)
        #expect((Duration.zero - .seconds(2) + .microseconds(1)).wholeMilliseconds == -1999)
    }

    @Test func hugeDurationsSaturate() {
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == .max)
        #expect(Duration.seconds(Int64.min).wholeMilliseconds == .min)
        #expect(Duration.seconds(Int64.max / 1000).wholeMilliseconds == Int64.max / 1000 * 1000)
        #expect(Duration.seconds(9_223_372_037).wholeNanoseconds == .max)  // just past 2^63 ns
        #expect(Duration.seconds(9_223_372_036).wholeNanoseconds == 9_223_372_036_000_000_000)
        #expect((Duration.seconds(-9_223_372_036) - .seconds(1)).wholeNanoseconds == .min)
        // The multiplication fits but adding the sub-second part overflows.
        let nearMax = Duration.seconds(Int64.max / 1000) + .milliseconds(999)
        #expect(nearMax.wholeMilliseconds == .max)
    }

    @Test func seconds() {
        #expect(Duration.milliseconds(1500).inSeconds == 1.5)
        #expect(Duration.milliseconds(-250).inSeconds == -0.25)
        #expect(Duration.nanoseconds(1).inSeconds == 1e-9)
        #expect(Duration.seconds(Int64.max).inSeconds == Double(Int64.max))
    }
}
