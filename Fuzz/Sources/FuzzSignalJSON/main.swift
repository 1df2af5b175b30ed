// Fuzzes the signal JSON parser (SwitchboardCore/JSON): any bytes in; what parses must survive a round
// trip through the writer unchanged.
//
// Properties, for every input:
// - a refusal names an offset inside the input (0...count);
// - only valid UTF-8 can parse, and parsing the same text as a `String` gives the same value;
// - nothing deeper than `JSONValue.maximumDepth` parses;
// - what parses is written back by `write(into:)`, and that text parses to an equal value which writes
//   the very same bytes again (the writer's output is the parser's fixed point); `serialized()` agrees.
import FuzzSupport
import SwitchboardCore

runFuzzer { input in
    let bytes = Array(input)
    let value: JSONValue
    do throws(JSONParseError) {
        value = try JSONValue(parsing: bytes)
    } catch {
        check((0...bytes.count).contains(error.offset), "error offset \(error.offset) outside 0...\(bytes.count)")
        return
    }

    guard let text = String(validating: bytes, as: UTF8.self) else {
        check(false, "invalid UTF-8 parsed as \(value)")
        return
    }
    check((try? JSONValue(parsing: text)) == value, "the String path disagrees with the bytes path")
    check(value.depth <= JSONValue.maximumDepth, "depth \(value.depth) parsed")

    var written: [UInt8] = []
    value.write(into: &written)
    let reparsed: JSONValue
    do {
        reparsed = try JSONValue(parsing: written)
    } catch {
        check(false, "the writer's output does not parse (\(error)): \(String(decoding: written, as: UTF8.self))")
        return
    }
    check(reparsed == value, "round trip changed the value: \(value) became \(reparsed)")
    var rewritten: [UInt8] = []
    reparsed.write(into: &rewritten)
    check(rewritten == written, "writing is not stable: \(written) then \(rewritten)")
    check(Array(value.serialized().utf8) == written, "serialized() differs from write(into:)")
}

extension JSONValue {
    /// Nesting of arrays and objects: 0 for a scalar, 1 for `[]` or `{}`.
    var depth: Int {
        switch self {
        case .array(let elements): 1 + (elements.map(\.depth).max() ?? 0)
        case .object(let object): 1 + (object.values.map(\.depth).max() ?? 0)
        default: 0
        }
    }
}
