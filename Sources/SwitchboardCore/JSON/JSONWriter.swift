import SwitchboardBasics

extension JSONValue {
    /// The compact JSON text (no insignificant whitespace).
    package func serialized() -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        write(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the compact JSON text as UTF-8 to `bytes`.
    ///
    /// Strings escape `"`, `\` and control characters (`\n`, `\r`, `\t`, `\b`, `\f`, otherwise
    /// `\u00XX`); everything else, non-ASCII included, is written as UTF-8 as it is.
    /// Numbers are written as their lexeme.
    package func write(into bytes: inout [UInt8]) {
        switch self {
        case .null:
            bytes.append(contentsOf: "null".utf8)
        case .bool(let value):
            bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .number(let lexeme):
            bytes.append(contentsOf: lexeme.utf8)
        case .string(let string):
            JSONWriter.writeString(string, into: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                element.write(into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            object.write(into: &bytes)
        }
    }
}

extension JSONObject {
    /// The compact JSON text of this object.
    package func serialized() -> String {
        JSONValue.object(self).serialized()
    }

    /// Appends the compact JSON text of this object as UTF-8 to `bytes`.
    package func write(into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
        for (offset, member) in storage.enumerated() {
            if offset > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(member.key, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
            member.value.write(into: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}

internal enum JSONWriter {
    static func writeString(_ string: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            writeEscaped(utf8, into: &bytes)
        }
        if done == nil {
            var copy = string
            copy.withUTF8 { writeEscaped($0, into: &bytes) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func writeEscaped(_ utf8: UnsafeBufferPointer<UInt8>, into bytes: inout [UInt8]) {
        var index = 0
        var nonASCII = false
        while true {
            let runEnd = JSONByteScan.plainRunEnd(in: utf8, from: index, nonASCII: &nonASCII)
            if index < runEnd {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[index..<runEnd]))
            }
            guard runEnd < utf8.count else { return }
            let byte = utf8[runEnd]
            bytes.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            default:
                bytes.append(contentsOf: "u00".utf8)
                Hex.append(byte, to: &bytes)
            }
            index = runEnd + 1
        }
    }
}
