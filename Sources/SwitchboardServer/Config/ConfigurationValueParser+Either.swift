extension ConfigurationValueParser where Value == Bool {
    /// One of two words: `no` is `false`, `yes` is `true` (`deny` or `allow`).
    static func either(false no: String, true yes: String) -> Self {
        Self { (text: String) throws(InvalidConfigurationValue) -> Bool in
            switch text.lowercased() {
            case no: return false
            case yes: return true
            default: throw InvalidConfigurationValue("must be \(no) or \(yes)")
            }
        }
    }
}
