import NIOCore

extension RESPValue {
    /// `true` for the null bulk string and the null array.
    package var isNull: Bool {
        switch self {
        case .bulkString(nil), .array(nil): true
        default: false
        }
    }

    /// The text of a simple or bulk string (bulk bytes decoded as UTF-8), else `nil`.
    package var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let buffer?): String(buffer: buffer)
        default: nil
        }
    }

    /// The bytes of a bulk string, else `nil`.
    package var buffer: ByteBuffer? {
        if case .bulkString(let buffer?) = self { return buffer }
        return nil
    }

    /// The bytes of a bulk string as an array, else `nil`.
    package var bytes: [UInt8]? {
        buffer.map { Array($0.readableBytesView) }
    }

    /// An integer reply, or a bulk string holding a decimal integer (e.g. `GET` of a counter), else `nil`.
    package var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString(let buffer?): Int64(String(buffer: buffer))
        default: nil
        }
    }

    /// The elements of a non-null array, else `nil`.
    package var array: [RESPValue]? {
        if case .array(let elements?) = self { return elements }
        return nil
    }
}

extension RESPValue: CustomStringConvertible {
    package var description: String {
        switch self {
        case .simpleString(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulkString(nil): "$nil"
        case .bulkString(let buffer?): "$\(String(reflecting: String(buffer: buffer)))"
        case .array(nil): "*nil"
        case .array(let elements?): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
