/// A configuration value that is missing, unknown or invalid, naming the key and where it came from.
///
/// Its description reads like `websocket.read_timeout: "abc" is not a duration (write 500ms, 30s, 2m);
/// set by environment variable SWITCHBOARD_WEBSOCKET_READ_TIMEOUT`.
package struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key path (`websocket.read_timeout`), when the problem concerns one key.
    package let key: String?
    /// The offending value as written; `nil` for secrets and when the problem is not a value.
    package let value: String?
    /// What is wrong, e.g. `is not a duration (write 500ms, 30s, 2m)`.
    package let problem: String
    /// Where the value came from (`config.yaml:3`, `environment variable …`, `command line`).
    package let source: String?

    /// Creates an error.
    package init(key: String?, value: String? = nil, problem: String, source: String? = nil) {
        self.key = key
        self.value = value
        self.problem = problem
        self.source = source
    }

    /// `key: "value" problem; set by source`.
    package var description: String {
        var text = ""
        if let key { text += "\(key): " }
        if let value {
            let shown = value.count > 80 ? value.prefix(80) + "…" : Substring(value)
            text += "\"\(shown)\" "
        }
        text += problem
        if let source { text += "; set by \(source)" }
        return text
    }
}
