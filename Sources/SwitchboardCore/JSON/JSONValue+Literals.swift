extension JSONValue {
    /// Whether this is a JSON string.
    public var isString: Bool { stringValue != nil }

    /// Whether this is a JSON number.
    public var isNumber: Bool { numberLexeme != nil }
}
