/// One configuration key: its path, default, parser and meaning. The table of these
/// (``SwitchboardConfiguration/keys``) drives file, environment and flag parsing and the reference docs.
struct ConfigurationKey: Sendable {
    /// Where a key's default comes from.
    enum Default: Sendable {
        /// Parsed from this text, like any other source.
        case value(String)
        /// Computed when first needed (once per process); `shown` is what the docs say.
        case generated(shown: String, @Sendable () -> String)
        /// No default: the key stays unset (`nil`) unless a source sets it.
        case none
        /// No default: loading fails unless a source sets it.
        case required

        var isRequired: Bool {
            if case .required = self { return true }
            return false
        }
    }

    /// The dotted key path, e.g. `websocket.read_timeout`.
    let path: String
    /// The default.
    let defaultValue: Default
    /// One sentence for the reference table.
    let meaning: String
    /// Whether values are kept out of error messages.
    let isSecret: Bool
    /// Whether the value is a list: comma-separated text, or a YAML sequence in the file.
    let isList: Bool
    /// `SWITCHBOARD_` + the path in capitals with `.` as `_`.
    let environmentVariable: String
    private let assign: @Sendable (String, inout SwitchboardConfiguration) throws(InvalidConfigurationValue) -> Void

    init<Value>(
        _ path: String,
        _ keyPath: any WritableKeyPath<SwitchboardConfiguration, Value> & Sendable,
        default defaultValue: Default,
        _ parser: ConfigurationValueParser<Value>,
        _ meaning: String,
        secret: Bool = false,
        list: Bool = false
    ) {
        self.path = path
        self.defaultValue = defaultValue
        self.meaning = meaning
        self.isSecret = secret
        self.isList = list
        self.environmentVariable = "SWITCHBOARD_" + path.uppercased().replacing(".", with: "_")
        self.assign = { (text: String, configuration: inout SwitchboardConfiguration) throws(InvalidConfigurationValue) in
            configuration[keyPath: keyPath] = try parser.parse(text)
        }
    }

    /// Parses `text` and stores it, or explains (naming this key and `source`) why it cannot.
    func apply(_ text: String, to configuration: inout SwitchboardConfiguration, source: String?) throws(ConfigurationError) {
        do {
            try assign(text, &configuration)
        } catch {
            throw ConfigurationError(key: path, value: isSecret ? nil : text, problem: error.problem, source: source)
        }
    }

    /// Stores the default, when the key has one.
    func applyDefault(to configuration: inout SwitchboardConfiguration) throws(ConfigurationError) {
        switch defaultValue {
        case .value(let text): try apply(text, to: &configuration, source: "built-in default")
        case .generated(_, let make): try apply(make(), to: &configuration, source: "built-in default")
        case .none, .required: break
        }
    }
}

/// Why a value does not parse; ``ConfigurationKey`` adds the key, value and source.
struct InvalidConfigurationValue: Error {
    /// E.g. `is not a duration (write 500ms, 30s, 2m)`.
    let problem: String

    init(_ problem: String) {
        self.problem = problem
    }
}
