import Logging
import SwitchboardBasics

/// Turns the text of a configuration value (from YAML, an environment variable or a flag) into a value.
struct ConfigurationValueParser<Value>: Sendable {
    let parse: @Sendable (String) throws(InvalidConfigurationValue) -> Value

    /// The same parser, except that an empty value means "unset" (`nil`).
    var optional: ConfigurationValueParser<Value?> {
        let parse = self.parse
        return ConfigurationValueParser<Value?> { (text: String) throws(InvalidConfigurationValue) -> Value? in
            text.isEmpty ? nil : try parse(text)
        }
    }
}

extension ConfigurationValueParser where Value == String {
    /// Any text, including empty.
    static let anyText = Self { $0 }

    /// Any non-empty text.
    static let nonEmpty = Self { (text: String) throws(InvalidConfigurationValue) -> String in
        guard !text.isEmpty else { throw InvalidConfigurationValue("must not be empty") }
        return text
    }

    /// A secret of at least `minimumBytes` bytes (UTF-8): an HMAC key shorter than its hash's output
    /// (32 bytes for HS256) is guessable offline from any one token it signed.
    static func secret(minimumBytes: Int) -> Self {
        Self { (text: String) throws(InvalidConfigurationValue) -> String in
            guard text.utf8.count >= minimumBytes else {
                throw InvalidConfigurationValue(
                    "must be at least \(minimumBytes) bytes (generate one with `openssl rand -hex 32`)"
                )
            }
            return text
        }
    }

    /// A host name or address: non-empty, no whitespace.
    static let host = Self { (text: String) throws(InvalidConfigurationValue) -> String in
        guard !text.isEmpty, !text.contains(where: \.isWhitespace) else {
            throw InvalidConfigurationValue("is not a host name or address")
        }
        return text
    }

    /// A node id: 1-128 characters of `[A-Za-z0-9._:-]` (it goes into Redis keys and log lines).
    static let nodeID = Self { (text: String) throws(InvalidConfigurationValue) -> String in
        guard NodeIdentifier.isValid(text) else {
            throw InvalidConfigurationValue("is not a node id (1-128 characters of A-Z a-z 0-9 . _ : -)")
        }
        return text
    }

    /// A URL whose scheme is one of `prefixes` and that has something after it.
    static func url(prefixes: [String], kind: String, example: String) -> Self {
        Self { (text: String) throws(InvalidConfigurationValue) -> String in
            let matches = prefixes.contains { text.hasPrefix($0) && text.count > $0.count }
            guard matches, !text.contains(where: \.isWhitespace) else {
                throw InvalidConfigurationValue("is not \(kind) (write \(example))")
            }
            return text
        }
    }
}

extension ConfigurationValueParser where Value == Int {
    /// A decimal integer within `range`.
    static func integer(_ range: ClosedRange<Int>) -> Self {
        Self { (text: String) throws(InvalidConfigurationValue) -> Int in
            let trimmed = text.trimmingWhitespace()
            guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) || trimmed.first == "-",
                let value = Int(trimmed)
            else {
                throw InvalidConfigurationValue("is not an integer")
            }
            guard range.contains(value) else {
                throw InvalidConfigurationValue("is out of range (\(range.lowerBound)-\(range.upperBound))")
            }
            return value
        }
    }
}

extension ConfigurationValueParser where Value == TrustedProxies {
    /// Comma-separated IP addresses and CIDR networks (`10.0.0.0/8,::1`); empty for none.
    static let trustedProxies = Self { (text: String) throws(InvalidConfigurationValue) -> TrustedProxies in
        var networks: [IPNetwork] = []
        for entry in text.split(separator: ",") {
            let trimmed = entry.trimmingWhitespace()
            guard !trimmed.isEmpty else { continue }
            guard let network = IPNetwork(trimmed) else {
                throw InvalidConfigurationValue(
                    "has \"\(trimmed)\", which is not an IP address or CIDR network (write 10.0.0.0/8, 192.0.2.7, fd00::/8)"
                )
            }
            networks.append(network)
        }
        return TrustedProxies(networks)
    }
}

extension ConfigurationValueParser where Value == [String] {
    /// Comma-separated URLs whose schemes are among `schemes` (`stun:host:3478,stuns:host:5349`); empty for none.
    static func urlList(schemes: [String]) -> Self {
        Self { (text: String) throws(InvalidConfigurationValue) -> [String] in
            var urls: [String] = []
            for entry in text.split(separator: ",") {
                let url = String(entry.trimmingWhitespace())
                guard !url.isEmpty else { continue }
                let known = schemes.contains { url.hasPrefix($0 + ":") && url.count > $0.count + 1 }
                guard known, !url.contains(where: \.isWhitespace) else {
                    let written = schemes.map { "\($0):host:port" }.joined(separator: " or ")
                    throw InvalidConfigurationValue("has \"\(url)\", which is not a URL of the form \(written)")
                }
                urls.append(url)
            }
            return urls
        }
    }
}

extension ConfigurationValueParser where Value == Bool {
    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`), in any case.
    static let boolean = Self { (text: String) throws(InvalidConfigurationValue) -> Bool in
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw InvalidConfigurationValue("is not a boolean (write true or false)")
        }
    }
}

extension ConfigurationValueParser where Value == Logger.Level {
    /// One of swift-log's levels, in any case (`warn` is accepted for `warning`).
    static let logLevel = Self { (text: String) throws(InvalidConfigurationValue) -> Logger.Level in
        let name = text.trimmingWhitespace().lowercased()
        if let level = Logger.Level(rawValue: name) { return level }
        if name == "warn" { return .warning }
        let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        throw InvalidConfigurationValue("is not a log level (\(names))")
    }
}

extension ConfigurationValueParser where Value == Duration {
    /// The longest duration accepted.
    static var maximumDuration: Duration { .seconds(24 * 3600) }

    /// A duration written `500us`, `500ms`, `30s`, `2m`, `1h`, or a bare integer of seconds; positive unless
    /// `allowZero`, and at most `maximum` (24h unless given).
    static func duration(allowZero: Bool = false, maximum: Duration = maximumDuration) -> Self {
        Self { (text: String) throws(InvalidConfigurationValue) -> Duration in
            guard let duration = DurationText.parse(text) else {
                throw InvalidConfigurationValue("is not a duration (write 500ms, 30s, 2m)")
            }
            guard allowZero || duration > .zero else { throw InvalidConfigurationValue("must be greater than 0") }
            guard duration <= maximum else {
                throw InvalidConfigurationValue("must be at most \(DurationText.format(maximum))")
            }
            return duration
        }
    }
}

/// Durations as the configuration writes them.
package enum DurationText {
    /// `500us`, `500ms`, `30s`, `2m`, `1h`, or a bare integer of seconds (`45`); `nil` for anything else
    /// (negative numbers, fractions, unknown units, empty text). Surrounding whitespace is ignored.
    package static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed[digits.endIndex...]
        guard !digits.isEmpty, digits.count <= 12, let amount = Int64(digits) else { return nil }
        switch unit {
        case "", "s": return .seconds(amount)
        case "us": return .microseconds(amount)
        case "ms": return .milliseconds(amount)
        case "m": return .seconds(amount * 60)
        case "h": return .seconds(amount * 3600)
        default: return nil
        }
    }

    /// `duration` in the largest unit that writes it exactly (`1h`, `2m`, `30s`, `500ms`, `500us`).
    package static func format(_ duration: Duration) -> String {
        let microseconds = duration.wholeMicroseconds
        if microseconds % 1000 != 0 { return "\(microseconds)us" }
        let milliseconds = duration.wholeMilliseconds
        if milliseconds != 0, milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds != 0, milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace.
    fileprivate func trimmingWhitespace() -> Substring {
        let view = Substring(self)
        guard let first = view.firstIndex(where: { !$0.isWhitespace }),
            let last = view.lastIndex(where: { !$0.isWhitespace })
        else { return view[view.endIndex...] }
        return view[first...last]
    }
}
