extension JSONValue {
    /// Whether this is a JSON string.
    package var isString: Bool { stringValue != nil }

    /// Whether this is a JSON number.
    package var isNumber: Bool { numberLexeme != nil }
}
