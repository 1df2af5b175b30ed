/// A JSON value, as parsed from or serialized to RFC 8259 text.
///
/// Used on the message hot path to read a signal's `content`, stamp fields and write it back out.
/// Numbers keep their exact lexeme (`1.50e3` stays `1.50e3`), and objects keep their key order,
/// so a value that is parsed and re-serialized without changes comes out byte-identical
/// (modulo insignificant whitespace and string escapes, which are normalized).
///
/// Equality is structural and exact: numbers compare by lexeme (`1.0 != 1`) and objects compare
/// their keys in order.
package enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, held as its raw lexeme. When you build one by hand, the lexeme must follow the
    /// JSON number grammar; prefer ``integer(_:)`` and ``double(_:)``.
    case number(String)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object with ordered keys.
    case object(JSONObject)
}

extension JSONValue {
    /// A number holding `value` exactly.
    package static func integer(_ value: some BinaryInteger) -> JSONValue {
        .number(String(value))
    }

    /// A number holding `value`, or `nil` when it is infinite or NaN (JSON cannot express those).
    package static func double(_ value: Double) -> JSONValue? {
        guard value.isFinite else { return nil }
        return .number(value.description)
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The string, when this is a string.
    package var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The boolean, when this is `true` or `false`.
    package var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The object, when this is an object.
    package var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The elements, when this is an array.
    package var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The raw number lexeme, when this is a number.
    package var numberLexeme: String? {
        if case .number(let lexeme) = self { return lexeme }
        return nil
    }

    /// The number as an `Int64`, when this is a number written as an integer that fits
    /// (`42`, `-7`; not `4.2`, `1e3` or `42.0`).
    package var int64Value: Int64? {
        if case .number(let lexeme) = self { return Int64(lexeme) }
        return nil
    }

    /// The number as an `Int`, under the same rules as ``int64Value``.
    package var intValue: Int? {
        if case .number(let lexeme) = self { return Int(lexeme) }
        return nil
    }

    /// The number as a `Double` (nearest representable value), when this is a number.
    package var doubleValue: Double? {
        if case .number(let lexeme) = self { return Double(lexeme) }
        return nil
    }

    /// Whether this is `null`.
    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The member named `key`, when this is an object that has it.
    package subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    /// `nil` is `null`.
    package init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    /// A boolean literal.
    package init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    /// An integer literal becomes a number.
    package init(integerLiteral value: Int) { self = .integer(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    /// A string literal becomes a string (not parsed as JSON).
    package init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    /// An array literal.
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// A dictionary literal becomes an object, keeping the literal's order.
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text.
    package var description: String { serialized() }
}
